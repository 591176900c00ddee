//! What an identity may do: the scopes of the API (`responses:read`, ...), held
//! as a small set, and the mapping from role names to scopes. A route names the
//! one scope it needs; `admin` also widens what a caller sees from its own
//! objects to its whole tenant's.

use std::collections::BTreeMap;
use std::fmt;

/// One scope of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ResponsesRead,
    ResponsesWrite,
    ConversationsRead,
    ConversationsWrite,
    /// Sees and deletes every object of the tenant, and manages its keys.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Self::ResponsesRead,
        Self::ResponsesWrite,
        Self::ConversationsRead,
        Self::ConversationsWrite,
        Self::Admin,
    ];

    /// The scope's name on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResponsesRead => "responses:read",
            Self::ResponsesWrite => "responses:write",
            Self::ConversationsRead => "conversations:read",
            Self::ConversationsWrite => "conversations:write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub const NONE: Self = Self(0);

    /// What a credential that names no scope and no known role gets: everything a
    /// user does with its own objects, nothing of an admin.
    pub fn user() -> Self {
        Self::of(&[
            Permission::ResponsesRead,
            Permission::ResponsesWrite,
            Permission::ConversationsRead,
            Permission::ConversationsWrite,
        ])
    }

    /// Every scope, admin included.
    pub fn all() -> Self {
        Self::of(&Permission::ALL)
    }

    pub fn of(permissions: &[Permission]) -> Self {
        permissions
            .iter()
            .fold(Self::NONE, |set, p| Self(set.0 | p.bit()))
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Parses scope names; `*` means every scope. Unknown names are an error
    /// (for configuration, where a typo must not silently grant nothing).
    pub fn parse_strict<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = Self::NONE;
        for name in names {
            let name = name.trim();
            if name == "*" {
                set = Self::all();
            } else {
                let permission = Permission::parse(name).ok_or_else(|| {
                    format!(
                        "unknown scope `{name}` (known: {}, or *)",
                        Permission::ALL.map(Permission::as_str).join(", ")
                    )
                })?;
                set = set.union(Self::of(&[permission]));
            }
        }
        Ok(set)
    }

    /// Parses scope names a token carries, ignoring those that are not antwort's
    /// (`openid`, `profile`, ...).
    pub fn parse_lenient<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(|name| Permission::parse(name.trim()))
            .fold(Self::NONE, |set, p| set.union(Self::of(&[p])))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|p| p.as_str()))
            .finish()
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Permission::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

/// Role names to the scopes they grant (`auth.authorization.role_scopes`), with
/// the admin role (`auth.authorization.admin_role`) granting every scope.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleScopes {
    roles: BTreeMap<String, Permissions>,
    admin_role: Option<String>,
}

impl Default for RoleScopes {
    fn default() -> Self {
        Self {
            roles: BTreeMap::new(),
            admin_role: Some("admin".to_owned()),
        }
    }
}

impl RoleScopes {
    /// A mapping whose values are scope names or other roles' names (expanded,
    /// cycles refused).
    pub fn new(
        config: &BTreeMap<String, Vec<String>>,
        admin_role: Option<String>,
    ) -> Result<Self, String> {
        let mut roles = BTreeMap::new();
        for name in config.keys() {
            let set = expand(name, config, &mut Vec::new())?;
            roles.insert(name.clone(), set);
        }
        Ok(Self { roles, admin_role })
    }

    /// The scopes `roles` grant together; `None` when none of them is known.
    pub fn grant<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> Option<Permissions> {
        let mut granted = None;
        for role in roles {
            let set = if self.admin_role.as_deref() == Some(role) {
                Some(Permissions::all())
            } else {
                self.roles.get(role).copied()
            };
            if let Some(set) = set {
                granted = Some(granted.unwrap_or(Permissions::NONE).union(set));
            }
        }
        granted
    }
}

fn expand(
    role: &str,
    config: &BTreeMap<String, Vec<String>>,
    path: &mut Vec<String>,
) -> Result<Permissions, String> {
    if path.iter().any(|seen| seen == role) {
        return Err(format!(
            "auth.authorization.role_scopes: role `{role}` refers to itself through {}",
            path.join(" -> ")
        ));
    }
    let Some(entries) = config.get(role) else {
        return Err(format!(
            "auth.authorization.role_scopes: unknown role `{role}`"
        ));
    };
    path.push(role.to_owned());
    let mut set = Permissions::NONE;
    for entry in entries {
        if config.contains_key(entry) {
            set = set.union(expand(entry, config, path)?);
        } else {
            set = set.union(
                Permissions::parse_strict([entry.as_str()])
                    .map_err(|e| format!("auth.authorization.role_scopes.{role}: {e}"))?,
            );
        }
    }
    path.pop();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_round_trip_and_unknown_ones_are_refused_in_configuration() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert!(Permissions::parse_strict(["responses:raed"]).is_err());
        assert_eq!(Permissions::parse_strict(["*"]), Ok(Permissions::all()));
        let lenient = Permissions::parse_lenient("openid responses:read profile".split(' '));
        assert_eq!(lenient, Permissions::of(&[Permission::ResponsesRead]));
    }

    #[test]
    fn roles_expand_through_other_roles_and_cycles_are_refused() {
        let mut config = BTreeMap::new();
        config.insert("reader".to_owned(), vec!["responses:read".to_owned()]);
        config.insert(
            "writer".to_owned(),
            vec!["reader".to_owned(), "responses:write".to_owned()],
        );
        let roles = RoleScopes::new(&config, Some("boss".into())).unwrap();
        assert_eq!(
            roles.grant(["writer"]),
            Some(Permissions::of(&[
                Permission::ResponsesRead,
                Permission::ResponsesWrite
            ]))
        );
        assert_eq!(roles.grant(["boss"]), Some(Permissions::all()));
        assert_eq!(roles.grant(["stranger"]), None);

        config.insert("reader".to_owned(), vec!["writer".to_owned()]);
        let error = RoleScopes::new(&config, None).unwrap_err();
        assert!(error.contains("refers to itself"), "{error}");
    }
}
