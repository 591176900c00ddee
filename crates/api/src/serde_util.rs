//! Small serde helpers shared by the wire types.

use serde::{Deserialize, Deserializer};

/// Reads an explicit JSON `null` as the type's default, as clients send `null` for
/// "not set" on fields that the response always carries.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
