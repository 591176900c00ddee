//! The tools of one response: what the model is offered, and where each call goes.
//!
//! Client functions keep their names and are handed back to the client.
//! Server-side tools are offered as their tool type says (MCP tools under a name
//! qualified by their server label), and a call is routed by looking its name up
//! in this catalog, built from the declared tools: never by guessing from a bare
//! function name. A name that is not a server tool of this response goes back to
//! the client, so a client function named like a server tool stays the client's.
//! Nothing here names a tool type: each answers for its own declarations through
//! the seam of `crate::tool`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use antwort_api::{ApiError, FunctionTool, ToolChoice, ToolChoiceMode};

use crate::model::ModelToolChoice;
use crate::tool::{Offer, Route, ServerTool};

/// Checks a `tool_choice` against the declared tools, before anything runs.
pub fn check_tool_choice(
    choice: &ToolChoice,
    functions: &[impl Borrow<FunctionTool>],
    tools: &[impl Borrow<dyn ServerTool>],
) -> Result<(), ApiError> {
    let has_function = |name: &str| functions.iter().any(|f| f.borrow().name == name);
    let mut claimed = false;
    for tool in tools {
        claimed |= tool.borrow().check_choice(choice)?;
    }
    match choice {
        ToolChoice::Mode(ToolChoiceMode::Required) if functions.is_empty() && tools.is_empty() => {
            Err(ApiError::invalid(
                "tool_choice",
                "tool_choice 'required' needs at least one tool",
            ))
        }
        ToolChoice::Mode(_) => Ok(()),
        ToolChoice::Function { name } if !has_function(name) => Err(ApiError::invalid(
            "tool_choice",
            format!("tool_choice names function '{name}', which is not in tools"),
        )),
        ToolChoice::Function { .. } => Ok(()),
        ToolChoice::Mcp { server_label, .. } if !claimed => Err(ApiError::invalid(
            "tool_choice",
            format!("tool_choice names MCP server '{server_label}', which is not in tools"),
        )),
        ToolChoice::Mcp { .. } => Ok(()),
        ToolChoice::AllowedTools { tools: entries, .. } => {
            let kinds: Vec<&str> = tools.iter().map(|tool| tool.borrow().kind()).collect();
            for (index, entry) in entries.iter().enumerate() {
                let param = format!("tool_choice.tools[{index}]");
                match (entry.kind.as_str(), &entry.name) {
                    ("function", Some(name)) if has_function(name) => {}
                    ("function", Some(name)) => {
                        return Err(ApiError::invalid(
                            param,
                            format!("allowed_tools names function '{name}', which is not in tools"),
                        ));
                    }
                    ("function", None) => {
                        return Err(ApiError::invalid(param, "allowed_tools entry needs a name"));
                    }
                    // A declared type checked its own entries above.
                    (kind, _) if kinds.contains(&kind) => {}
                    ("mcp", _) => {
                        return Err(ApiError::invalid(
                            param,
                            format!(
                                "allowed_tools names MCP server '{}', which is not in tools",
                                entry.server_label.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                    (kind, _) => {
                        return Err(ApiError::unsupported(
                            param,
                            format!(
                                "allowed_tools entry of type '{kind}' is not supported; function and mcp tools run here"
                            ),
                        ));
                    }
                }
            }
            Ok(())
        }
        // A hosted tool type this gateway runs claims its own choice.
        ToolChoice::Hosted { .. } if claimed => Ok(()),
        ToolChoice::Hosted { kind } => Err(ApiError::unsupported(
            "tool_choice",
            format!("tool_choice of type '{kind}' names a hosted tool this gateway does not run"),
        )),
    }
}

/// Server-side tools by the name the model calls them.
#[derive(Debug, Clone, Default)]
pub struct Routes(HashMap<String, Route>);

impl Routes {
    /// The server-side tool this name calls; `None` for anything else, which goes
    /// back to the client.
    pub fn get(&self, name: &str) -> Option<&Route> {
        self.0.get(name)
    }
}

/// The tools of one model turn.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub offered: Vec<FunctionTool>,
    pub tool_choice: ModelToolChoice,
    pub routes: Routes,
}

impl Catalog {
    /// Builds the catalog from checked declarations (see [`check_tool_choice`]).
    pub fn build(
        functions: &[impl Borrow<FunctionTool>],
        tools: &[Arc<dyn ServerTool>],
        choice: &ToolChoice,
    ) -> Self {
        let (offered, tool_choice, server) = select(functions, tools, |tool| &**tool, choice);
        let routes = server
            .into_iter()
            .map(|(tool, offer)| {
                let route = Route {
                    tool: tool.clone(),
                    target: offer.target,
                    approval: offer.approval,
                };
                (offer.function.name, route)
            })
            .collect();
        Self {
            offered,
            tool_choice,
            routes: Routes(routes),
        }
    }

    /// What the model is offered, and its tool choice, before the server-side
    /// tools are prepared (those not known yet offer nothing): what a request's
    /// first fit and its input-token count measure.
    pub fn offered(
        functions: &[impl Borrow<FunctionTool>],
        tools: &[Box<dyn ServerTool>],
        choice: &ToolChoice,
    ) -> (Vec<FunctionTool>, ModelToolChoice) {
        let (offered, tool_choice, _) = select(functions, tools, |tool| &**tool, choice);
        (offered, tool_choice)
    }
}

/// The functions offered (the client's, then the server-side tools' under their
/// names), the model's tool choice, and each server-side offer with its tool.
fn select<'t, T>(
    functions: &[impl Borrow<FunctionTool>],
    tools: &'t [T],
    as_tool: impl Fn(&'t T) -> &'t dyn ServerTool,
    choice: &ToolChoice,
) -> (Vec<FunctionTool>, ModelToolChoice, Vec<(&'t T, Offer)>) {
    let mut offered: Vec<FunctionTool> = Vec::new();
    let mut forced = None;
    let mut server_offers: Vec<(&'t T, Offer)> = Vec::new();
    for handle in tools {
        let tool = as_tool(handle);
        let mut kept: Vec<Offer> = Vec::new();
        for offer in tool.offers(choice) {
            let name = &offer.function.name;
            let taken = functions.iter().any(|f| f.borrow().name == *name)
                || server_offers.iter().any(|(_, o)| o.function.name == *name)
                || kept.iter().any(|o| o.function.name == *name);
            if taken {
                // `a__b` + `c` and `a` + `b__c` meet as `a__b__c`; so can a
                // client function. The first declared keeps the name.
                tracing::warn!(
                    tool = %name,
                    "another tool already has this name; the server-side tool is not offered"
                );
                continue;
            }
            kept.push(offer);
        }
        let survivors: Vec<&Offer> = kept.iter().collect();
        if forced.is_none() {
            forced = tool.forced_choice(choice, &survivors);
        }
        server_offers.extend(kept.into_iter().map(|offer| (handle, offer)));
    }
    let client_allowed = |name: &str| match choice {
        ToolChoice::AllowedTools { tools, .. } => tools
            .iter()
            .any(|t| t.kind == "function" && t.name.as_deref() == Some(name)),
        // A choice that forces a server-side tool offers only those.
        _ => forced.is_none(),
    };
    for function in functions.iter().map(Borrow::borrow) {
        if client_allowed(&function.name) {
            offered.push(function.clone());
        }
    }
    offered.extend(
        server_offers
            .iter()
            .map(|(_, offer)| offer.function.clone()),
    );
    let mode = |mode: &ToolChoiceMode| match mode {
        ToolChoiceMode::None => ModelToolChoice::None,
        ToolChoiceMode::Auto => ModelToolChoice::Auto,
        ToolChoiceMode::Required => ModelToolChoice::Required,
    };
    let tool_choice = if offered.is_empty() {
        // Nothing to choose from (a server could not list its tools, say).
        ModelToolChoice::Default
    } else {
        match choice {
            ToolChoice::Mode(m) => mode(m),
            ToolChoice::Function { name } => ModelToolChoice::Function(name.clone()),
            ToolChoice::AllowedTools { mode: m, .. } => mode(m),
            ToolChoice::Hosted { .. } => forced.unwrap_or(ModelToolChoice::Auto),
            ToolChoice::Mcp { .. } => forced.unwrap_or(ModelToolChoice::Required),
        }
    };
    (offered, tool_choice, server_offers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::{McpType, NoMcp};
    use crate::tool::{Target, ToolType};
    use antwort_api::{FunctionType, Item, McpListToolsItem, McpListedTool, Tool};
    use serde_json::json;

    /// The MCP tool set `declared` makes, with each server's tools known as
    /// `listed` says (as if listed earlier in the conversation).
    fn mcp(declared: serde_json::Value, listed: &[(&str, &[&str])]) -> Vec<Arc<dyn ServerTool>> {
        let tools: Vec<Tool> = serde_json::from_value(declared).unwrap();
        let Some(mut set) = McpType::new(Arc::new(NoMcp))
            .declare(&tools, &crate::store::Scope::default())
            .unwrap()
        else {
            return Vec::new();
        };
        let history: Vec<Item> = listed
            .iter()
            .map(|(label, names)| {
                // Listed by this gateway: the id names the declared server.
                let url = tools.iter().find_map(|tool| match tool {
                    Tool::Mcp(mcp) if mcp.server_label == *label => mcp.server_url.clone(),
                    _ => None,
                });
                let server = crate::mcp::McpServer {
                    label: (*label).into(),
                    url,
                    headers: Default::default(),
                    tenant: "default".into(),
                };
                Item::McpListTools(McpListToolsItem {
                    id: crate::ids::mcp_list_tools_id(&server.fingerprint()),
                    server_label: (*label).into(),
                    tools: names
                        .iter()
                        .map(|name| McpListedTool {
                            name: (*name).into(),
                            description: None,
                            input_schema: json!({"type": "object"}),
                            annotations: None,
                        })
                        .collect(),
                    error: None,
                })
            })
            .collect();
        set.read_context(&history, history.len()).unwrap();
        vec![Arc::from(set)]
    }

    fn function(name: &str) -> FunctionTool {
        FunctionTool {
            kind: FunctionType::Function,
            name: name.into(),
            description: None,
            parameters: None,
            strict: None,
        }
    }

    #[test]
    fn server_tools_are_qualified_and_a_client_function_keeps_its_name() {
        let tools = mcp(
            json!([{"type": "mcp", "server_label": "calc", "server_url": "http://x", "require_approval": "never"}]),
            &[("calc", &["add", "echo"])],
        );
        let catalog = Catalog::build(&[function("add")], &tools, &ToolChoice::default());
        let names: Vec<_> = catalog.offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["add", "calc__add", "calc__echo"]);
        assert!(
            catalog.routes.get("add").is_none(),
            "the client's own function"
        );
        let route = catalog.routes.get("calc__add").unwrap();
        assert_eq!(route.tool.kind(), "mcp");
        assert_eq!(
            route.target,
            Target {
                label: "calc".into(),
                name: "add".into()
            }
        );
        assert!(!route.approval);
    }

    #[test]
    fn allowed_tools_and_approval_default() {
        let tools = mcp(
            json!([{"type": "mcp", "server_label": "calc", "server_url": "http://x", "allowed_tools": ["echo"]}]),
            &[("calc", &["add", "echo"])],
        );
        let catalog = Catalog::build(&[] as &[FunctionTool], &tools, &ToolChoice::default());
        assert_eq!(catalog.offered.len(), 1);
        assert!(catalog.routes.get("calc__echo").unwrap().approval);
    }

    #[test]
    fn an_mcp_tool_choice_forces_that_tool_or_that_server() {
        let tools = mcp(
            json!([{"type": "mcp", "server_label": "calc", "server_url": "http://x", "require_approval": "never"}]),
            &[("calc", &["add", "echo"])],
        );
        let functions = vec![function("f")];
        let named: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "calc", "name": "add"}))
                .unwrap();
        check_tool_choice(&named, &functions, &tools).unwrap();
        let catalog = Catalog::build(&functions, &tools, &named);
        assert_eq!(
            catalog.tool_choice,
            ModelToolChoice::Function("calc__add".into())
        );
        let any: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "calc"})).unwrap();
        let catalog = Catalog::build(&functions, &tools, &any);
        assert_eq!(catalog.tool_choice, ModelToolChoice::Required);
        assert!(catalog.offered.iter().all(|t| t.name.starts_with("calc__")));
        let allowed: ToolChoice =
            serde_json::from_value(json!({"type": "allowed_tools", "mode": "auto",
            "tools": [{"type": "mcp", "server_label": "calc", "name": "echo"}]}))
            .unwrap();
        check_tool_choice(&allowed, &functions, &tools).unwrap();
        let catalog = Catalog::build(&functions, &tools, &allowed);
        let names: Vec<_> = catalog.offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["calc__echo"]);
    }

    #[test]
    fn before_listing_a_forced_server_offers_nothing_yet() {
        let tools: Vec<Tool> = serde_json::from_value(json!([
            {"type": "mcp", "server_label": "calc", "server_url": "http://x"}
        ]))
        .unwrap();
        let unlisted = vec![
            McpType::new(Arc::new(NoMcp))
                .declare(&tools, &crate::store::Scope::default())
                .unwrap()
                .unwrap(),
        ];
        let forced: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "calc"})).unwrap();
        let (offered, choice) = Catalog::offered(&[function("f")], &unlisted, &forced);
        assert!(
            offered.is_empty(),
            "not the client's functions: {offered:?}"
        );
        assert_eq!(choice, ModelToolChoice::Default);
        let (offered, _) = Catalog::offered(&[function("f")], &unlisted, &ToolChoice::default());
        assert_eq!(
            offered.len(),
            1,
            "the functions, while the server is unlisted"
        );
    }

    #[test]
    fn colliding_qualified_names_keep_the_first_declared() {
        let tools = mcp(
            json!([
                {"type": "mcp", "server_label": "a__b", "server_url": "http://x"},
                {"type": "mcp", "server_label": "a", "server_url": "http://y"}
            ]),
            &[("a__b", &["c"]), ("a", &["b__c"])],
        );
        let catalog = Catalog::build(&[] as &[FunctionTool], &tools, &ToolChoice::default());
        assert_eq!(catalog.offered.len(), 1);
        assert_eq!(catalog.routes.get("a__b__c").unwrap().target.label, "a__b");
    }

    #[test]
    fn declarations_are_checked() {
        let twice: Vec<Tool> = serde_json::from_value(json!([
            {"type": "mcp", "server_label": "a", "server_url": "http://x"},
            {"type": "mcp", "server_label": "a", "server_url": "http://y"}
        ]))
        .unwrap();
        let mcp_type = McpType::new(Arc::new(NoMcp));
        let error = mcp_type
            .declare(&twice, &crate::store::Scope::default())
            .err()
            .unwrap();
        assert_eq!(error.param.as_deref(), Some("tools[1].server_label"));
        let bad: Vec<Tool> =
            serde_json::from_value(json!([{"type": "mcp", "server_label": "a b"}])).unwrap();
        assert!(
            mcp_type
                .declare(&bad, &crate::store::Scope::default())
                .is_err()
        );
        let choice: ToolChoice =
            serde_json::from_value(json!({"type": "mcp", "server_label": "zzz"})).unwrap();
        let none: &[Arc<dyn ServerTool>] = &[];
        assert!(check_tool_choice(&choice, &[] as &[FunctionTool], none).is_err());
    }
}
