//! The checked-in `openapi.json`, and a check of real responses against it.

/// The checked-in `openapi.json`, and a check of real responses against it (the subset of JSON
/// Schema the description uses: `$ref`, `type`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `enum`, `minimum`/`maximum`, `minItems`/`maxItems`,
/// `format: uuid | date-time`).
pub struct OpenApi {
    spec: serde_json::Value,
}

impl OpenApi {
    pub fn load() -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
        let text = std::fs::read_to_string(&path).expect("openapi.json");
        OpenApi { spec: serde_json::from_str(&text).expect("openapi.json is JSON") }
    }

    /// `(METHOD, path template)` of every operation described.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
        ops.sort();
        ops
    }

    /// Checks a response of the operation at `(method, template)` against the description.
    /// The whole document.
    pub fn spec(&self) -> &serde_json::Value {
        &self.spec
    }

    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let op = &self.spec["paths"][template][method.to_lowercase()];
        if op.is_null() {
            return Err(format!("{method} {template} is not described"));
        }
        let response = &op["responses"][status.to_string()];
        if response.is_null() {
            return Err(format!("{method} {template}: status {status} is not described"));
        }
        let schema = &response["content"]["application/json"]["schema"];
        self.check(schema, body, "$")
    }

    fn resolve<'a>(&'a self, schema: &'a serde_json::Value) -> &'a serde_json::Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.spec["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn check(&self, schema: &serde_json::Value, value: &serde_json::Value, at: &str) -> Result<(), String> {
        use serde_json::Value;
        let schema = self.resolve(schema);
        let fail = |what: String| Err(format!("{at}: {what} (value {value})"));
        if value.is_null() && schema["nullable"] == Value::Bool(true) {
            return Ok(());
        }
        if let Some(options) = schema["enum"].as_array() {
            if !options.contains(value) {
                return fail(format!("not one of {options:?}"));
            }
        }
        match (schema["type"].as_str(), value) {
            (None, _) => {}
            (Some("object"), Value::Object(map)) => {
                let props = schema["properties"].as_object();
                for required in schema["required"].as_array().into_iter().flatten() {
                    if !map.contains_key(required.as_str().unwrap_or_default()) {
                        return fail(format!("missing required {required}"));
                    }
                }
                for (key, v) in map {
                    match props.and_then(|p| p.get(key)) {
                        Some(sub) => self.check(sub, v, &format!("{at}.{key}"))?,
                        None if schema["additionalProperties"] == Value::Bool(false) => {
                            return fail(format!("undocumented property {key}"))
                        }
                        None => {}
                    }
                }
            }
            (Some("array"), Value::Array(items)) => {
                if let Some(min) = schema["minItems"].as_u64() {
                    if (items.len() as u64) < min {
                        return fail(format!("fewer than {min} items"));
                    }
                }
                if let Some(max) = schema["maxItems"].as_u64() {
                    if items.len() as u64 > max {
                        return fail(format!("more than {max} items"));
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"))?;
                }
            }
            (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let n = n.as_f64().unwrap_or_default();
                if schema["minimum"].as_f64().is_some_and(|min| n < min)
                    || schema["maximum"].as_f64().is_some_and(|max| n > max)
                {
                    return fail("out of range".into());
                }
            }
            (Some("string"), Value::String(s)) => match schema["format"].as_str() {
                Some("uuid") if uuid::Uuid::parse_str(s).is_err() => return fail("not a uuid".into()),
                Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                    return fail("not RFC 3339".into())
                }
                _ => {}
            },
            (Some(t), _) => return fail(format!("not of type {t}")),
        }
        Ok(())
    }
}
