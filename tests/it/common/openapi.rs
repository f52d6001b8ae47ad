//! Every answer the tests get from a documented route is checked against the OpenAPI
//! document: its status must be one the operation lists, and a JSON body must validate
//! against the schema given for it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Value, json};

static DOC: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(shopflow::web::api::document()).unwrap());

type Validators = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;
static VALIDATORS: LazyLock<Validators> = LazyLock::new(Default::default);

/// The document the app serves.
pub fn document() -> &'static Value {
    &DOC
}

/// The documented path template `path` matches (`/api/orders/{id}` for `/api/orders/7`).
pub fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    DOC["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
        })
}

/// Follows a `$ref` into the document's components.
fn resolve(value: &'static Value) -> &'static Value {
    match value["$ref"].as_str() {
        Some(r) => DOC
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => value,
    }
}

/// Panics unless `status` and `body` are what the document says `method path` answers.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, body: &[u8]) {
    let path = path.split('?').next().unwrap_or(path);
    let Some(template) = template_of(path) else {
        return; // not part of the API (the page's routes, or no route at all)
    };
    let operation = &DOC["paths"][template][method.to_ascii_lowercase()];
    if operation.is_null() {
        return; // a method the route does not have: the 405 the tests ask for
    }
    let responses = &operation["responses"];
    let code = status.to_string();
    let range = format!("{}XX", &code[..1]);
    let (key, response) = [code.as_str(), range.as_str()]
        .into_iter()
        .find_map(|k| Some((k, resolve(responses.get(k)?))))
        .unwrap_or_else(|| panic!("{method} {template} answered {status}, not documented"));
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some(schema) = response["content"].get(media).map(|c| &c["schema"]) else {
        // A body in a media type the answer does not list is a mismatch (unless it
        // lists none, as for a bare 304 or 204).
        let listed: Vec<&String> = response["content"]
            .as_object()
            .map_or(vec![], |c| c.keys().collect());
        assert!(
            listed.is_empty() || body.is_empty(),
            "{method} {template} {status}: `{media}` where {listed:?} is documented"
        );
        return;
    };
    if media != "application/json" {
        return;
    }
    let id = format!("{method} {template} {key} {media}");
    let validator = VALIDATORS
        .lock()
        .unwrap()
        .entry(id)
        .or_insert_with(|| {
            let mut root = schema.clone();
            if let Value::Object(root) = &mut root {
                root.insert("components".into(), DOC["components"].clone());
            } else {
                root = json!({ "allOf": [schema], "components": DOC["components"] });
            }
            Arc::new(jsonschema::draft202012::new(&root).expect("the schema compiles"))
        })
        .clone();
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: not JSON ({e})"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match the OpenAPI document: {errors:?}\n{value}"
    );
}
