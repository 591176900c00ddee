//! What one model accepts where models differ, so that a request the gateway
//! takes is sent in the form that model's server does not refuse.

use std::collections::HashMap;

use serde::Deserialize;

/// The options of one model (or the default of a backend), as a configuration
/// names them: `max_completion_tokens`, `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {
    /// Chat Completions: send the output limit as `max_completion_tokens`
    /// instead of `max_tokens` (OpenAI's o-series and newer models refuse
    /// `max_tokens`; most open servers know only `max_tokens`). The Responses
    /// API has one name for it, `max_output_tokens`, and ignores this.
    pub max_completion_tokens: bool,
    /// Whether the model accepts a reasoning effort. When false, the effort a
    /// request asks for is not sent (`reasoning_effort` in Chat Completions,
    /// `reasoning.effort` in Responses): models without reasoning refuse it.
    pub reasoning_effort: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            max_completion_tokens: false,
            reasoning_effort: true,
        }
    }
}

impl ModelOptions {
    /// The options of `model`: its own when `models` names it, else `default`.
    pub fn for_model(
        models: &HashMap<String, ModelOptions>,
        default: ModelOptions,
        model: &str,
    ) -> ModelOptions {
        models.get(model).copied().unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_not_named_gets_the_backend_default() {
        let models = HashMap::from([(
            "o3".to_owned(),
            ModelOptions {
                max_completion_tokens: true,
                ..ModelOptions::default()
            },
        )]);
        let default = ModelOptions {
            reasoning_effort: false,
            ..ModelOptions::default()
        };
        assert!(ModelOptions::for_model(&models, default, "o3").max_completion_tokens);
        assert!(ModelOptions::for_model(&models, default, "o3").reasoning_effort);
        assert_eq!(ModelOptions::for_model(&models, default, "gpt-4o"), default);
    }

    #[test]
    fn a_configuration_names_only_what_differs() {
        let options: ModelOptions =
            serde_json::from_str(r#"{"max_completion_tokens": true}"#).unwrap();
        assert_eq!(
            options,
            ModelOptions {
                max_completion_tokens: true,
                reasoning_effort: true
            }
        );
        assert!(serde_json::from_str::<ModelOptions>(r#"{"max_tokens": true}"#).is_err());
    }
}
