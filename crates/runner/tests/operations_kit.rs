//! The operations kit in `deploy/` against a real Prometheus (Debian's `prometheus` package)
//! scraping a running `hardal serve`: `promtool` accepts the configuration and the alert rules,
//! every alert and dashboard expression evaluates, every metric name they use is one the service
//! exports, every selector matches series and every dashboard panel shows data once events
//! flowed, and alerts fire when their cause is made to happen.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::service::{
    Service, block_on, delivered, free_port, ndjson_batches, serve_config, wait_until,
};
use common::{events, simulator};
use hardal_insider_simulator::{Fault, Scope};
use serde_json::{Value, json};

/// A program of Debian's `prometheus` package: where Debian puts it, else on the `PATH`.
fn program(name: &str) -> PathBuf {
    let debian = Path::new("/usr/bin").join(name);
    if debian.exists() {
        debian
    } else {
        PathBuf::from(name)
    }
}

/// Series Prometheus makes itself for every target, which the service cannot export.
const SYNTHETIC: &[&str] = &["up"];

/// How long the test waits on anything Prometheus has to scrape and evaluate (each every second).
const PATIENCE: Duration = Duration::from_secs(60);

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn the_alerts_and_the_dashboard_use_only_exported_metrics_and_the_alerts_fire() {
    let deploy = deploy();
    promtool(
        &["check", "rules"],
        &deploy.join("prometheus/hardal-alerts.yml"),
    );
    promtool(
        &["check", "config"],
        &deploy.join("prometheus/prometheus.yml"),
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/hardal-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let panels = panel_expressions(&dashboard);
    assert!(
        panels.len() >= 10,
        "the dashboard has its panels: {panels:?}"
    );

    let sim = simulator();
    let mut config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    config["backlog"]["max_bytes"] = json!(1_000_000);
    let service = Service::start("opskit", &config);
    let prometheus = Prometheus::start(&service);

    // Deliveries, duplicates and a retried request.
    assert_eq!(service.post_ndjson(&events(40, 4)).0, 202);
    wait_until("40 events are delivered", PATIENCE, || {
        delivered(&sim).0.len() == 40
    });
    sim.inject(Fault::ServerError { status: 500 }, Scope::Next(1))
        .unwrap();
    let (status, answer) = service.post_ndjson(&events(60, 4));
    assert_eq!((status, answer["duplicates"].as_u64()), (202, Some(40)));
    wait_until("60 events are delivered", PATIENCE, || {
        delivered(&sim).0.len() == 60
    });
    // A dead letter (a national phone number, which Insider refuses), put back in line; it is
    // refused again.
    assert_eq!(service.post_ndjson(&refused("p1")).0, 202);
    wait_until("a dead letter", PATIENCE, || {
        service.dlq(&["list"]).0.lines().count() == 1
    });
    let (_, said) = service.dlq(&["replay", "--destination", "insider"]);
    assert!(said.contains("put back"), "{said}");

    // The alerts' expressions come from Prometheus, as it loaded them.
    let rules = prometheus.rules();
    let alert_count = std::fs::read_to_string(deploy.join("prometheus/hardal-alerts.yml"))
        .unwrap()
        .matches("- alert:")
        .count();
    assert_eq!(rules.len(), alert_count, "Prometheus loaded every alert");

    // A second dead letter once Prometheus saw the first: a labelled counter that first appears
    // at 1 has no increase.
    wait_until("Prometheus has scraped the dead letter", PATIENCE, || {
        !prometheus
            .query(r#"hardal_events_resolved_total{ending="rejected"} >= 1"#)
            .is_empty()
    });
    assert_eq!(service.post_ndjson(&refused("p2")).0, 202);
    prometheus.wait_for_alert("HardalDeadLettersRising", "destination", "insider");

    // Every metric name used is exported, now that every series had its cause.
    wait_until("the replay is counted", PATIENCE, || {
        exported_names(&service.get("/metrics").1).contains("hardal_events_replayed_total")
    });
    let exported = exported_names(&service.get("/metrics").1);
    let variables = variable_metrics(&dashboard);
    let expressions: Vec<&str> = rules
        .iter()
        .map(|(_, query)| query.as_str())
        .chain(panels.iter().map(String::as_str))
        .chain(variables.iter().map(String::as_str))
        .collect();
    let mut unknown = BTreeSet::new();
    for expression in &expressions {
        for name in metric_names(expression) {
            if !exported.contains(&name) && !SYNTHETIC.contains(&name.as_str()) {
                unknown.insert(format!("{name} (in {expression})"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metric names the service does not export: {unknown:#?}\nexported: {exported:?}"
    );

    // Every expression evaluates; every panel shows something once Prometheus has two scrapes
    // of each series.
    for (_, query) in &rules {
        prometheus.query(query);
    }
    let shown: Vec<&str> = panels
        .iter()
        .chain(&variables)
        .map(String::as_str)
        .collect();
    prometheus.wait_for_data("panels and variables", &shown);
    for (name, _) in &rules {
        prometheus.wait_for_rule_health(name);
    }

    // A destination that answers 401 is paused, and the alert says so.
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    assert_eq!(service.post_ndjson(&events(70, 4)).0, 202);
    prometheus.wait_for_alert("HardalDestinationPaused", "destination", "insider");
    // Its events wait in the backlog until it is full; ingestion then answers 503, again once
    // Prometheus has seen the first (a labelled counter that first appears at 1 has no rate).
    let more = events(20_000, 50);
    let mut batches = ndjson_batches(&more, 250).into_iter().skip(1);
    let mut post = || {
        service
            .post_ndjson(&batches.next().expect("the backlog fills up"))
            .0
    };
    loop {
        match post() {
            202 => {}
            503 => break,
            other => panic!("a post to a backlog filling up was answered {other}"),
        }
    }
    wait_until("Prometheus has scraped a 503", PATIENCE, || {
        !prometheus
            .query(r#"hardal_ingest_requests_total{status="503"}"#)
            .is_empty()
    });
    assert_eq!(post(), 503);
    let instance = service.url.trim_start_matches("http://");
    prometheus.wait_for_alert("HardalIngestionRefused", "instance", instance);
    // A full backlog makes /readyz 503, and the readiness gauge says so.
    prometheus.wait_for_alert("HardalNotReady", "instance", instance);

    // Every selector of every alert and panel matches series: no label or value is misspelt.
    let all: BTreeSet<String> = expressions.iter().flat_map(|e| selectors(e)).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    prometheus.wait_for_data("selectors", &all);
    prometheus.wait_for_data("scrapes", &[r#"up{job="hardal"} == 1"#]);
}

/// An event the `insider` destination refuses (a national phone number), for user `user`.
fn refused(user: &str) -> String {
    json!({"event_name": "identify", "user_id": user, "user": {"phone_number": "0532 123 45 67"}})
        .to_string()
        + "\n"
}

/// Runs `promtool <args> <file>` and fails with its output unless it succeeds.
fn promtool(args: &[&str], file: &Path) {
    let output = Command::new(program("promtool"))
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("promtool runs (apt-get install prometheus): {e}"));
    assert!(
        output.status.success(),
        "promtool {args:?} {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Prometheus on loopback scraping one service every second, with the kit's alert rules
/// (their `for:` shortened to a second) evaluated every second and its storage in a temp dir.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Prometheus {
    fn start(service: &Service) -> Prometheus {
        let dir = service.dir.join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let rules: String = std::fs::read_to_string(deploy().join("prometheus/hardal-alerts.yml"))
            .unwrap()
            .lines()
            .map(|line| match line.split_once("for: ") {
                Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 1s\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        let rules_file = dir.join("hardal-alerts.yml");
        std::fs::write(&rules_file, rules).unwrap();
        promtool(&["check", "rules"], &rules_file);
        let target = service.url.trim_start_matches("http://");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: hardal\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules_file.display()
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        promtool(&["check", "config"], &config_file);
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(program("prometheus"))
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus starts (apt-get install prometheus): {e}"));
        let mut prometheus = Prometheus {
            child,
            url: format!("http://{address}"),
            dir,
        };
        wait_until("Prometheus is ready", PATIENCE, || {
            if let Some(status) = prometheus.child.try_wait().unwrap() {
                panic!("Prometheus exited ({status}):\n{}", prometheus.log());
            }
            prometheus.status("/-/ready") == Some(200)
        });
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    fn status(&self, path: &str) -> Option<u16> {
        let url = format!("{}{path}", self.url);
        block_on(async move { reqwest::get(url).await.ok().map(|r| r.status().as_u16()) })
    }

    /// GETs an API path with query parameters; fails unless Prometheus answers `success`.
    fn api(&self, path: &str, parameters: &[(&str, &str)]) -> Value {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.url)).unwrap();
        url.query_pairs_mut().extend_pairs(parameters);
        let answer: Value = block_on(async move {
            let response = reqwest::get(url).await.expect("Prometheus answers");
            let text = response.text().await.expect("Prometheus answers");
            serde_json::from_str(&text).expect("Prometheus answers JSON")
        });
        assert_eq!(
            answer["status"], "success",
            "{path} {parameters:?}: {answer}"
        );
        answer["data"].clone()
    }

    /// Evaluates an expression now; returns its series.
    fn query(&self, expression: &str) -> Vec<Value> {
        self.api("/api/v1/query", &[("query", expression)])["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every alert rule loaded: its name and expression.
    fn rules(&self) -> Vec<(String, String)> {
        let data = self.api("/api/v1/rules", &[("type", "alert")]);
        data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter())
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["query"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until the rule has been evaluated without error.
    fn wait_for_rule_health(&self, name: &str) {
        let rule = || {
            self.api("/api/v1/rules", &[("type", "alert")])["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap().clone())
                .find(|r| r["name"] == name)
                .unwrap()
        };
        wait_until(&format!("rule {name} is evaluated"), PATIENCE, || {
            rule()["health"] != "unknown"
        });
        let rule = rule();
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    /// Waits until every expression has series, and names those that have none.
    fn wait_for_data(&self, what: &str, expressions: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let empty: Vec<&&str> = expressions
                .iter()
                .filter(|e| self.query(e).is_empty())
                .collect();
            if empty.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "{what} without data: {empty:#?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the alert fires with the label.
    fn wait_for_alert(&self, name: &str, label: &str, value: &str) {
        wait_until(
            &format!("{name} fires for {label}={value}"),
            PATIENCE,
            || {
                self.api("/api/v1/alerts", &[])["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| {
                        a["labels"]["alertname"] == name
                            && a["labels"][label] == value
                            && a["state"] == "firing"
                    })
            },
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every panel's query, with Grafana's variables replaced as Grafana would: the template
/// variables by their "All" value, the intervals by durations that span the test.
fn panel_expressions(dashboard: &Value) -> Vec<String> {
    let mut panels: Vec<&Value> = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        panels.push(panel);
    }
    let expressions: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| substitute(dashboard, t["expr"].as_str().expect("a target has an expr")))
        .collect();
    expressions
}

/// The metric selectors of the dashboard's template variables (`label_values(selector, label)`,
/// Grafana's function, not PromQL).
fn variable_metrics(dashboard: &Value) -> Vec<String> {
    dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"]["query"].as_str().unwrap();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .unwrap_or_else(|| panic!("{query} is label_values(selector, label)"))
                .0;
            substitute(dashboard, inner)
        })
        .collect()
}

fn substitute(dashboard: &Value, expression: &str) -> String {
    let mut expression = expression
        .replace("$__rate_interval", "1m")
        .replace("$__range", "1h");
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(all) = variable["allValue"].as_str() {
            let name = variable["name"].as_str().unwrap();
            expression = expression.replace(&format!("${name}"), all);
        }
    }
    assert!(
        !expression.contains('$'),
        "a variable the test does not know: {expression}"
    );
    expression
}

/// The metric names in Prometheus text format: each sample line's name.
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split(|c: char| c == '{' || c.is_whitespace())
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The metric names a PromQL expression selects.
fn metric_names(expression: &str) -> BTreeSet<String> {
    selectors(expression)
        .iter()
        .map(|s| s.split('{').next().unwrap().to_owned())
        .collect()
}

/// The vector selectors of a PromQL expression (`name` or `name{matchers}`): identifiers outside
/// strings, label matchers, ranges and grouping lists that are neither keywords nor called as
/// functions, with their matchers.
fn selectors(expression: &str) -> BTreeSet<String> {
    // Aggregations too: they may come before their parentheses (`sum by (le) (…)`).
    const KEYWORDS: &str = "and or unless by without on ignoring group_left group_right bool \
                            offset inf nan sum min max avg group stddev stdvar count \
                            count_values bottomk topk quantile";
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expression.chars().collect();
    let mut found = BTreeSet::new();
    let (mut braces, mut brackets, mut grouping) = (0, 0, false);
    let mut previous = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if "\"'`".contains(c) {
            i = after_string(&chars, i);
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers and durations (0.99, 1e3, 0x1f, 5m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..]
                .iter()
                .position(|c| !c.is_whitespace())
                .map(|n| i + n);
            let called = next.is_some_and(|n| chars[n] == '(');
            if braces == 0
                && brackets == 0
                && !grouping
                && !called
                && !KEYWORDS
                    .split_whitespace()
                    .any(|k| word.eq_ignore_ascii_case(k))
            {
                let end = match next {
                    Some(n) if chars[n] == '{' => after_matchers(&chars, n),
                    _ => i,
                };
                found.insert(chars[start..end].iter().collect());
            }
            previous = word;
            continue;
        }
        match c {
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            '(' => grouping = GROUPING.contains(&previous.as_str()),
            ')' => grouping = false,
            _ => {}
        }
        if !c.is_whitespace() {
            previous.clear();
        }
        i += 1;
    }
    found
}

/// The index after the string literal that opens at `i`.
fn after_string(chars: &[char], mut i: usize) -> usize {
    let quote = chars[i];
    i += 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' && quote != '`' {
            2
        } else {
            1
        };
    }
    i + 1
}

/// The index after the label matchers that open at `i` (`{`).
fn after_matchers(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] != '}' {
        i = if "\"'`".contains(chars[i]) {
            after_string(chars, i)
        } else {
            i + 1
        };
    }
    (i + 1).min(chars.len())
}

#[test]
fn selectors_are_the_selected_metrics_with_their_matchers() {
    let found = |e: &str| selectors(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        found(
            r#"histogram_quantile(0.99, sum by (destination, le) (rate(hardal_request_seconds_bucket {instance=~"a|b", x="y}"}[5m] offset 1h)))"#
        ),
        [r#"hardal_request_seconds_bucket {instance=~"a|b", x="y}"}"#]
    );
    assert_eq!(
        found("a > bool 1e3 and on (job) group_left (instance) b or sum without (d) (c) * Inf"),
        ["a", "b", "c"]
    );
    assert_eq!(
        found(r#"up{job="hardal"} == 0 unless ignoring(x) absent(nope_total)"#),
        ["nope_total", r#"up{job="hardal"}"#]
    );
}
