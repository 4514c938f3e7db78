//! The routes against the real engine and all-MiniLM-L6-v2 on the CPU: OpenAI's and TEI's
//! answers match sentence-transformers (the fixture), every bad request gets its status and an
//! error body in its API's shape, the API key guards what it should, and the metrics count
//! exactly the requests made.

mod common;

use base64::Engine as _;
use common::*;
use streampool_engine::EngineConfig;
use streampool_server::ServerConfig;

fn engine() -> EngineConfig {
    EngineConfig::default().workers(2)
}

#[test]
fn openai_float_and_base64_match_the_fixture() {
    let Some(files) = minilm() else { return };
    let server = serve(files, ServerConfig::default(), engine());
    let cases = fixture(5);
    let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    let body = serde_json::json!({ "input": texts, "model": "anything" });
    let a = post(server.addr(), "/v1/embeddings", &body);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let j = json(&a);
    assert_eq!(
        (j["object"].as_str(), j["model"].as_str()),
        (Some("list"), Some("all-MiniLM-L6-v2"))
    );
    let data = j["data"].as_array().unwrap();
    assert_eq!(data.len(), cases.len());
    for (i, (d, (text, want))) in data.iter().zip(&cases).enumerate() {
        assert_eq!(
            (d["index"].as_u64(), d["object"].as_str()),
            (Some(i as u64), Some("embedding"))
        );
        let c = cosine(&floats(&d["embedding"]), want);
        assert!(c >= 0.99999, "{text:?}: cosine {c}");
    }
    let tokens = j["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens >= 2 * cases.len() as u64 && j["usage"]["total_tokens"] == tokens);

    // base64: little-endian f32s, the same vectors.
    let body = serde_json::json!({ "input": texts[0], "encoding_format": "base64" });
    let j = json(&post(server.addr(), "/v1/embeddings", &body));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(j["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let v: Vec<f64> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect();
    assert_eq!(v.len(), 384);
    assert!(cosine(&v, &cases[0].1) >= 0.99999);

    // Token ids from /tokenize give the text's vector.
    let tokens =
        json(&post(server.addr(), "/tokenize", &serde_json::json!({ "inputs": texts[1] })));
    let ids: Vec<u64> =
        tokens[0].as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect();
    let j = json(&post(server.addr(), "/v1/embeddings", &serde_json::json!({ "input": [ids] })));
    assert!(cosine(&floats(&j["data"][0]["embedding"]), &cases[1].1) >= 0.99999);
}

#[test]
fn dimensions_are_refused_unless_the_server_allows_them() {
    let files = tiny();
    let server = serve(&files, ServerConfig::default(), engine());
    let ask = |addr, n: usize| {
        post(addr, "/v1/embeddings", &serde_json::json!({"input": "a b", "dimensions": n}))
    };
    let dim = json(&ask(server.addr(), 0))["error"]["message"].to_string();
    assert!(dim.contains("dimensions 0"), "{dim}");
    let a = ask(server.addr(), 8);
    assert_eq!(a.status, 400);
    assert!(json(&a)["error"]["message"].as_str().unwrap().contains("--matryoshka"));
    let config = ServerConfig { matryoshka: true, ..ServerConfig::default() };
    let server = serve(&files, config, engine());
    let j = json(&ask(server.addr(), 8));
    let v = floats(&j["data"][0]["embedding"]);
    assert_eq!(v.len(), 8);
    assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-5, "not re-normalised");
}

#[test]
fn tei_embed_tokenize_and_info() {
    let Some(files) = minilm() else { return };
    let server = serve(files, ServerConfig::default(), engine());
    let addr = server.addr();
    let cases = fixture(3);
    let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    // A bare array of vectors, for a text or an array of texts.
    let j = json(&post(addr, "/embed", &serde_json::json!({ "inputs": texts })));
    let vectors = j.as_array().unwrap();
    for (v, (text, want)) in vectors.iter().zip(&cases) {
        assert!(cosine(&floats(v), want) >= 0.99999, "{text:?}");
    }
    let one =
        json(&post(addr, "/embed", &serde_json::json!({ "inputs": texts[0], "normalize": false })));
    assert!(cosine(&floats(&one[0]), &cases[0].1) >= 0.99999);
    // The older form, in its own shape.
    let j = json(&post(addr, "/embed", &serde_json::json!({ "texts": [texts[2]] })));
    assert_eq!((j["model"].as_str(), j["dim"].as_u64()), (Some("all-MiniLM-L6-v2"), Some(384)));
    assert!(cosine(&floats(&j["embeddings"][0]), &cases[2].1) >= 0.99999);

    // Too long: truncated by default, 413 with truncate: false; left truncation keeps the end.
    let long = format!("{} {}", "word ".repeat(400), "ending");
    let a = post(addr, "/embed", &serde_json::json!({ "inputs": long, "truncate": false }));
    assert_eq!(a.status, 413, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(json(&a)["error_type"], "Validation");
    let right = json(&post(addr, "/embed", &serde_json::json!({ "inputs": long })));
    let left = json(&post(
        addr,
        "/embed",
        &serde_json::json!({ "inputs": long, "truncation_direction": "Left" }),
    ));
    assert!(cosine(&floats(&right[0]), &floats(&left[0])) < 0.9999, "left kept the same tokens");

    let t = json(&post(addr, "/tokenize", &serde_json::json!({ "inputs": ["hello world"] })));
    let tokens = t[0].as_array().unwrap();
    let texts: Vec<&str> = tokens.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["[CLS]", "hello", "world", "[SEP]"]);
    assert_eq!((tokens[2]["start"].as_u64(), tokens[2]["stop"].as_u64()), (Some(6), Some(11)));
    assert_eq!(tokens[0]["special"], true);
    let t = json(&post(
        addr,
        "/tokenize",
        &serde_json::json!({ "inputs": "hello", "add_special_tokens": false }),
    ));
    assert_eq!(t[0].as_array().unwrap().len(), 1);

    let info = json(&request(addr, "GET", "/info", b"").unwrap());
    assert_eq!(
        (info["model_id"].as_str(), info["dimension"].as_u64()),
        (Some("all-MiniLM-L6-v2"), Some(384))
    );
    assert_eq!(info["max_input_length"], 256);
    let spec = json(&request(addr, "GET", "/openapi.json", b"").unwrap());
    for path in ["/v1/embeddings", "/embed", "/tokenize", "/info", "/health", "/metrics"] {
        assert!(spec["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert!(spec["components"]["schemas"]["OpenAiRequest"].is_object());
}

/// Every route's bad input: status and error body asserted, and good requests answered after.
#[test]
fn bad_requests_get_their_status_and_error_shape() {
    let files = tiny();
    let config =
        ServerConfig { max_client_batch_size: 4, max_body_bytes: 10_000, ..Default::default() };
    let server = serve(&files, config, engine());
    let addr = server.addr();
    let raw = |method: &str, path: &str, body: &[u8]| request(addr, method, path, body).unwrap();
    let openai = |a: &Answer, status: u16| {
        assert_eq!(a.status, status, "{}", String::from_utf8_lossy(&a.body));
        let j = json(a);
        assert!(j["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
        assert!(j["error"]["type"].is_string(), "{j}");
    };
    let tei = |a: &Answer, status: u16| {
        assert_eq!(a.status, status, "{}", String::from_utf8_lossy(&a.body));
        let j = json(a);
        assert!(
            j["error"].as_str().is_some_and(|m| !m.is_empty()) && j["error_type"].is_string(),
            "{j}"
        );
    };
    openai(&raw("POST", "/v1/embeddings", b"{not json"), 400);
    openai(&raw("POST", "/v1/embeddings", br#"{"input": 5}"#), 400);
    openai(&raw("POST", "/v1/embeddings", br#"{"input": []}"#), 400);
    openai(&raw("POST", "/v1/embeddings", br#"{"model": "m"}"#), 400);
    openai(&raw("POST", "/v1/embeddings", br#"{"input": "a", "encoding_format": "hex"}"#), 400);
    openai(&raw("POST", "/v1/embeddings", br#"{"input": ["a","b","c","d","e"]}"#), 413);
    openai(&raw("POST", "/v1/embeddings", br#"{"input": [[101, 99999999]]}"#), 400);
    openai(&raw("POST", "/v1/embeddings", &vec![b' '; 20_000]), 413);
    tei(&raw("POST", "/embed", b"[1,2"), 422);
    tei(&raw("POST", "/embed", br#"{"inputs": "a", "colour": "red"}"#), 422);
    tei(&raw("POST", "/embed", br#"{}"#), 422);
    tei(&raw("POST", "/embed", br#"{"inputs": "a", "texts": ["b"]}"#), 422);
    tei(&raw("POST", "/embed", br#"{"inputs": "a", "truncation_direction": "Middle"}"#), 422);
    tei(&raw("POST", "/tokenize", br#"{"inputs": [[1, 2]]}"#), 422);
    tei(&raw("POST", "/tokenize", br#"{"inputs": []}"#), 422);
    openai(&raw("GET", "/nowhere", b""), 404);
    let a = raw("GET", "/embed", b"");
    openai(&a, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    openai(&raw("DELETE", "/info", b""), 405);
    // A long path is not echoed back.
    let long = format!("/{}", "x".repeat(5000));
    let a = raw("GET", &long, b"");
    assert!(a.body.len() < 1000, "{} bytes", a.body.len());
    // And the server still answers.
    let a = post(addr, "/v1/embeddings", &serde_json::json!({ "input": ["fine", "also fine"] }));
    assert_eq!(a.status, 200);
    assert_eq!(json(&a)["data"].as_array().unwrap().len(), 2);
}

#[test]
fn the_api_key_guards_every_route_but_health_and_metrics() {
    let config = ServerConfig { api_key: Some("s3cret".into()), ..ServerConfig::default() };
    let server = serve(&tiny(), config, engine());
    let addr = server.addr();
    let body = br#"{"input": "hi"}"#;
    for headers in
        [vec![], vec![("Authorization", "Bearer wrong!")], vec![("Authorization", "s3cret")]]
    {
        let a = request_with(addr, "POST", "/v1/embeddings", &headers, body).unwrap();
        assert_eq!(a.status, 401, "{headers:?}");
        assert_eq!(json(&a)["error"]["type"], "authentication_error");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    }
    let a = request_with(addr, "POST", "/embed", &[], br#"{"inputs": "hi"}"#).unwrap();
    assert_eq!((a.status, json(&a)["error_type"].as_str()), (401, Some("Unauthorized")));
    assert_eq!(request(addr, "GET", "/info", b"").unwrap().status, 401);
    let ok = [("Authorization", "Bearer s3cret")];
    assert_eq!(request_with(addr, "POST", "/v1/embeddings", &ok, body).unwrap().status, 200);
    assert_eq!(request_with(addr, "GET", "/info", &ok, b"").unwrap().status, 200);
    assert_eq!(request(addr, "GET", "/health", b"").unwrap().status, 200);
    assert_eq!(request(addr, "GET", "/metrics", b"").unwrap().status, 200);
}

/// The value of the sample `name{labels}` in a metrics text (0 when absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok()).unwrap_or(0.0)
}

#[test]
fn metrics_count_exactly_the_requests_made() {
    let server = serve(&tiny(), ServerConfig::default(), engine());
    let addr = server.addr();
    let scrape = || String::from_utf8(request(addr, "GET", "/metrics", b"").unwrap().body).unwrap();
    let before = scrape();
    for _ in 0..7 {
        assert_eq!(
            post(addr, "/v1/embeddings", &serde_json::json!({"input": ["a", "b c"]})).status,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(post(addr, "/embed", &serde_json::json!({"nope": 1})).status, 422);
    }
    let after = scrape();
    let ok = r#"streampool_http_requests_total{route="/v1/embeddings",status="200"}"#;
    let bad = r#"streampool_http_requests_total{route="/embed",status="422"}"#;
    assert_eq!(sample(&after, ok) - sample(&before, ok), 7.0, "{after}");
    assert_eq!(sample(&after, bad) - sample(&before, bad), 3.0);
    let texts = "streampool_embeddings_total";
    assert_eq!(sample(&after, texts) - sample(&before, texts), 14.0);
    let count = r#"streampool_http_request_duration_seconds_count{route="/v1/embeddings"}"#;
    assert_eq!(sample(&after, count), 7.0);
    for name in [
        "streampool_queue_depth",
        "streampool_streams_in_use",
        "streampool_batch_size_count",
        "streampool_tokens_total",
    ] {
        assert!(after.lines().any(|l| l.starts_with(name)), "{name} missing:\n{after}");
    }
}
