//! A generated mix of realistic Hardal events — every preset in several spellings and shapes, the
//! messy values real traffic has, every identifier case, purchases without ids, old data — mapped
//! by the `insider` destination. Every user object hardal sends must pass the simulator's
//! independent reading of Insider's rules, and no event may be refused that had a valid identifier
//! and a derivable set of required parameters. The counts are a reviewed snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use hardal_core::{Destination, Event, MapContext, NoteAction, Outcome};
use hardal_insider::{Insider, InsiderConfig};
use serde_json::{Value, json};

/// 2025-01-01T00:00:00Z.
const NOW: u64 = 1_735_689_600;
const EVENTS: usize = 12_000;

/// What the generator knows about an event it made: may hardal refuse it, and why.
#[derive(Default)]
struct Truth {
    kind: &'static str,
    valid_identifier: bool,
    /// For purchases and cart views: at least one line has everything Insider requires.
    derivable: bool,
}

struct Generator {
    rng: fastrand::Rng,
    /// Draws for the shapes added later (page fields in properties, product fields on custom
    /// events, standard events without their product), from a stream of their own so that the
    /// events drawn before them stay what they were.
    shapes: fastrand::Rng,
}

impl Generator {
    fn pick<'a, T>(&mut self, options: &'a [T]) -> &'a T {
        &options[self.rng.usize(..options.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.u32(..100) < percent
    }

    /// A user: identifiers valid, invalid or absent; attributes in the shapes they arrive in.
    fn user(&mut self, event: &mut Value, truth: &mut Truth, index: usize) {
        let has_id = self.chance(85);
        if has_id {
            event["user_id"] = if self.chance(10) {
                json!(index)
            } else {
                json!(format!("u{}", index % 997))
            };
        }
        truth.valid_identifier = has_id;
        // Many events carry no user object at all: then there are no attributes either.
        if self.chance(15) {
            return;
        }
        let mut user = serde_json::Map::new();
        let mut valid = has_id;
        match self.rng.u32(..10) {
            0..=5 => {
                user.insert(
                    "email".into(),
                    json!(format!("user{}@example.com", index % 997)),
                );
                valid = true;
            }
            6 => {
                user.insert(
                    "email".into(),
                    json!(format!("user{}(at)example.com", index % 997)),
                );
            }
            _ => {}
        }
        match self.rng.u32(..10) {
            0 => {
                user.insert("phone".into(), json!("+90 532 123 45 67"));
                valid = true;
            }
            1 => {
                user.insert("phone".into(), json!("0532 123 45 67"));
            }
            _ => {}
        }
        let country = *self.pick(&[
            "TR",
            "tr",
            "TUR",
            "Türkiye",
            "Turkey",
            "USA",
            "US",
            "United States",
            "Germany",
            "Atlantis",
            "Korea",
            "",
            "gb",
            "UK",
        ]);
        user.insert("country".into(), json!(country));
        let language = *self.pick(&["tr-TR", "en_US", "de", "tr-TR", "en-GB", "tr-TR", "english"]);
        user.insert("language".into(), json!(language));
        let optin = self
            .pick(&[
                json!(true),
                json!("true"),
                json!("1"),
                json!(false),
                json!("no"),
                json!(true),
                json!("maybe"),
            ])
            .clone();
        user.insert("email_optin".into(), optin);
        user.insert("name".into(), json!(format!("User {}", index % 997)));
        if self.chance(5) {
            user.insert(
                "birthday".into(),
                json!(*self.pick(&["1990-12-10", "12/10/1990", "660787200"])),
            );
        }
        event["user"] = Value::Object(user);
        truth.valid_identifier = valid;
    }

    fn created_at(&mut self) -> Value {
        // Most events are from the last weeks; some are old data from a backfill.
        let age_days = if self.chance(8) {
            self.rng.u64(91..1200)
        } else {
            self.rng.u64(0..60)
        };
        let at = NOW - age_days * 86_400 - self.rng.u64(..86_400);
        match self.rng.u32(..3) {
            0 => json!(at * 1000),
            1 => json!(at.to_string()),
            _ => json!(hardal_core::convert::to_timestamp(&json!(at)).unwrap()),
        }
    }

    /// One product line; `shape` is `ga4`, `segment` or `flat`. Returns whether it has all that
    /// Insider requires of a purchase line (a price, and a whole quantity when one is given).
    fn line(&mut self, shape: &str, into: &mut serde_json::Map<String, Value>) -> bool {
        let (id, name, category_key) = match shape {
            "ga4" => ("item_id", "item_name", "item_category"),
            "segment" => ("product_id", "name", "category"),
            _ => ("product_id", "product_name", "category"),
        };
        into.insert(id.into(), json!(format!("SKU-{}", self.rng.u32(..500))));
        into.insert(name.into(), json!("Mug"));
        let category = if self.chance(10) {
            json!(["Home", "Kitchen"])
        } else {
            json!("Kitchen")
        };
        into.insert(category_key.into(), category);
        let mut complete = true;
        match self.rng.u32(..100) {
            0..=4 => {
                into.insert("price".into(), json!("x"));
                complete = false;
            }
            5..=6 => complete = false,
            7..=40 => {
                into.insert("price".into(), json!("19.90"));
            }
            _ => {
                into.insert("price".into(), json!(60.25));
            }
        }
        match self.rng.u32(..100) {
            0..=1 => {
                into.insert("quantity".into(), json!("two"));
                complete = false;
            }
            2..=30 => {
                into.insert("quantity".into(), json!("2"));
            }
            31..=40 => {}
            _ => {
                into.insert("quantity".into(), json!(1));
            }
        }
        if self.chance(5) {
            into.insert("item_variant".into(), json!("red"));
        }
        complete
    }

    /// Properties with product lines; returns whether some line has everything required.
    fn lines(&mut self, properties: &mut serde_json::Map<String, Value>) -> bool {
        let currency_ok = match self.rng.u32(..100) {
            0..=1 => {
                properties.insert("currency".into(), json!("€"));
                false
            }
            2..=3 => false,
            4..=20 => {
                properties.insert("currency".into(), json!("try"));
                true
            }
            _ => {
                properties.insert("currency".into(), json!("TRY"));
                true
            }
        };
        let shape = *self.pick(&["ga4", "segment", "flat"]);
        let mut any_complete = false;
        if shape == "flat" {
            any_complete = self.line(shape, properties);
        } else {
            let mut lines = Vec::new();
            for _ in 0..self.rng.usize(1..4) {
                let mut line = serde_json::Map::new();
                any_complete |= self.line(shape, &mut line);
                lines.push(Value::Object(line));
            }
            let key = if shape == "ga4" { "items" } else { "products" };
            properties.insert(key.into(), Value::Array(lines));
        }
        any_complete && currency_ok
    }

    fn extras(&mut self, properties: &mut serde_json::Map<String, Value>) {
        if self.chance(10) {
            properties.insert(
                "source".into(),
                json!({"list": "search", "position": 3, "deep": {"a": {"b": 1}}}),
            );
        }
        if self.chance(5) {
            properties.insert("promotions".into(), json!([{"id": "P1"}]));
        }
    }

    fn event(&mut self, index: usize) -> (Value, Truth) {
        let mut truth = Truth::default();
        let mut event = json!({"created_at": self.created_at()});
        let with_id = self.chance(60);
        self.user(&mut event, &mut truth, index);
        let mut properties = serde_json::Map::new();
        let (kind, names): (&'static str, &[&str]) = match self.rng.u32(..100) {
            0..=14 => (
                "purchase",
                &[
                    "purchase",
                    "Order Completed",
                    "orderCompleted",
                    "checkout_completed",
                    "Transaction",
                ],
            ),
            15..=26 => (
                "product_view",
                &[
                    "view_item",
                    "Product Viewed",
                    "productViewed",
                    "ProductViewed",
                    "product viewed",
                ],
            ),
            27..=36 => (
                "add_to_cart",
                &[
                    "add_to_cart",
                    "Product Added",
                    "productAdded",
                    "Add To Cart",
                ],
            ),
            37..=41 => (
                "remove_from_cart",
                &["remove_from_cart", "Product Removed", "productRemoved"],
            ),
            42..=48 => ("cart_view", &["view_cart", "Cart Viewed", "cartViewed"]),
            49..=55 => (
                "checkout",
                &[
                    "begin_checkout",
                    "Checkout Started",
                    "checkoutStarted",
                    "Checkout Step Viewed",
                    "add_payment_info",
                ],
            ),
            56..=61 => (
                "listing_view",
                &["view_item_list", "Product List Viewed", "categoryViewed"],
            ),
            62..=66 => (
                "homepage",
                &["homepage_view", "Home Page Viewed", "homePageViewed"],
            ),
            67..=72 => (
                "registration",
                &["sign_up", "Signed Up", "signUp", "registration", "register"],
            ),
            73..=79 => ("identify", &["identify", "profile_update"]),
            _ => (
                "custom",
                &["page_view", "search", "newsletterSubscribe", "Video Played"],
            ),
        };
        truth.kind = kind;
        event["event_name"] = json!(*self.pick(names));
        let mut order_id = false;
        match kind {
            "purchase" => {
                match self.rng.u32(..100) {
                    0..=44 => {
                        properties.insert("transaction_id".into(), json!(format!("T-{index}")));
                        order_id = true;
                    }
                    45..=74 => {
                        properties.insert("order_id".into(), json!(format!("O-{index}")));
                        order_id = true;
                    }
                    // The rest carry no order id: the event id groups the lines, or (for about
                    // one purchase in ten) nothing does, and the group id is derived.
                    _ => {}
                }
                for (key, value) in [
                    ("coupon", json!("XMAS")),
                    ("shipping", json!(4.9)),
                    ("tax", json!("8.76")),
                    ("payment_method", json!("card")),
                ] {
                    if self.chance(30) {
                        properties.insert(key.into(), value);
                    }
                }
                truth.derivable = self.lines(&mut properties);
            }
            "cart_view" => {
                if self.chance(50) {
                    properties.insert("cart_id".into(), json!(format!("C-{}", index % 300)));
                }
                // A cart view requires no quantity: a line with a price and a currency suffices.
                truth.derivable = self.lines(&mut properties);
                truth.derivable |= cart_derivable(&properties);
            }
            "product_view" | "add_to_cart" | "remove_from_cart" | "checkout" => {
                self.lines(&mut properties);
            }
            "listing_view" => {
                properties.insert("item_list_name".into(), json!("Kitchen"));
            }
            "registration" => {
                properties.insert("method".into(), json!("google"));
            }
            "custom" => {
                properties.insert("page_type".into(), json!("home"));
            }
            _ => {}
        }
        // Events carry an `id` as a rule; about one purchase in ten has neither it nor an order id.
        if order_id || with_id || kind != "purchase" && self.chance(90) {
            event["id"] = json!(format!("e{index}"));
        }
        self.extras(&mut properties);
        if self.chance(70) {
            event["page"] =
                json!({"url": "https://shop.example/p/1", "referrer": "https://www.google.com/"});
        }
        if kind != "identify" || self.chance(50) {
            event["properties"] = Value::Object(properties);
        }
        self.corners(&mut event, kind);
        (event, truth)
    }

    /// The shapes the cross-check with Segment's destination found mapped badly.
    fn corners(&mut self, event: &mut Value, kind: &str) {
        let shapes = &mut self.shapes;
        match kind {
            // Page views with the page in their properties: Segment's page calls, GA4's events.
            "custom" if event["event_name"] == "page_view" && shapes.u32(..100) < 60 => {
                let page = event
                    .as_object_mut()
                    .and_then(|e| e.remove("page"))
                    .unwrap_or(json!({"url": "https://shop.example/c/1"}));
                let properties = &mut event["properties"];
                if shapes.bool() {
                    properties["page_url"] = page["url"].clone();
                    properties["referrer"] = page["referrer"].clone();
                } else {
                    properties["page_location"] = page["url"].clone();
                    properties["page_referrer"] = page["referrer"].clone();
                    properties["page_title"] = json!("Shop");
                }
            }
            // Wishlist and other product events no commerce preset selects, with flat fields.
            "custom" if shapes.u32(..100) < 40 => {
                let names = [
                    "wishlist_add",
                    "add_to_wishlist",
                    "Product Added to Wishlist",
                    "Product Shared",
                ];
                event["event_name"] = json!(names[shapes.usize(..names.len())]);
                let properties = &mut event["properties"];
                properties["product_id"] = json!(format!("SKU-{}", shapes.u32(..500)));
                properties[if shapes.bool() {
                    "product_name"
                } else {
                    "item_name"
                }] = json!("Mug");
                properties["price"] = json!(if shapes.bool() {
                    json!("19.90")
                } else {
                    json!(60.25)
                });
                if shapes.bool() {
                    properties["currency"] = json!("TRY");
                }
            }
            // A standard event without its product.
            "product_view" | "add_to_cart" | "remove_from_cart" | "checkout"
                if shapes.u32(..100) < 5 =>
            {
                if shapes.bool() {
                    event.as_object_mut().unwrap().remove("properties");
                } else {
                    event["properties"] = json!({"items": []});
                }
            }
            _ => {}
        }
    }
}

/// Product fields of Hardal's events that Insider has default parameters for.
const PRODUCT_FIELDS: [&str; 9] = [
    "product_id",
    "item_id",
    "sku",
    "product_name",
    "item_name",
    "price",
    "sale_price",
    "unit_price",
    "unit_sale_price",
];

/// The cross-check figures: page views sent whose event has a URL (in `page` or in the
/// properties) and how many of them were sent with Insider's `url`, custom events with product
/// fields and how many sent them under `custom`, and events skipped.
#[derive(Default)]
struct Figures {
    page_views: usize,
    page_views_with_url: usize,
    custom_with_product_fields: usize,
    product_fields_under_custom: usize,
    skipped: usize,
}

impl Figures {
    fn count(&mut self, event: &Value, kind: &str, sent: &[Value]) {
        let params: Vec<&Value> = sent
            .iter()
            .flat_map(|user| user["events"].as_array().into_iter().flatten())
            .map(|e| &e["event_params"])
            .collect();
        let properties = event["properties"].as_object();
        let has_url = event["page"].get("url").is_some()
            || properties
                .is_some_and(|p| p.contains_key("page_url") || p.contains_key("page_location"));
        // Page views sent as events (not expired), whose event says where the page was.
        if event["event_name"] == "page_view" && has_url && !params.is_empty() {
            self.page_views += 1;
            if params.iter().any(|p| p.get("url").is_some()) {
                self.page_views_with_url += 1;
            }
        }
        if kind == "custom"
            && properties.is_some_and(|p| PRODUCT_FIELDS.iter().any(|f| p.contains_key(*f)))
        {
            self.custom_with_product_fields += 1;
            let under_custom = |p: &&Value| {
                p["custom"]
                    .as_object()
                    .is_some_and(|c| PRODUCT_FIELDS.iter().any(|f| c.contains_key(*f)))
            };
            if params.iter().any(under_custom) {
                self.product_fields_under_custom += 1;
            }
        }
    }
}

/// Whether some line of a cart has a valid price and currency (quantity is not required there).
fn cart_derivable(properties: &serde_json::Map<String, Value>) -> bool {
    let currency = properties
        .get("currency")
        .and_then(Value::as_str)
        .is_some_and(|c| c.len() == 3 && c.is_ascii());
    let priced = |line: &Value| match line.get("price") {
        Some(Value::Number(_)) => true,
        Some(Value::String(s)) => s.parse::<f64>().is_ok(),
        _ => false,
    };
    let lines: Vec<&Value> = match properties.get("items").or(properties.get("products")) {
        Some(Value::Array(lines)) => lines.iter().collect(),
        _ => vec![],
    };
    let flat = Value::Object(properties.clone());
    currency && (lines.iter().any(|l| priced(l)) || (lines.is_empty() && priced(&flat)))
}

/// A refusal reason without this event's values and indexes: `events.event_params.currency: is
/// required on a purchase event`.
fn reason_kind(message: &str) -> String {
    let message = message.split(" (at preset").next().unwrap_or(message);
    let message = message
        .strip_prefix("nothing valid to send: ")
        .unwrap_or(message);
    let (field, rule) = message.split_once(": ").unwrap_or((message, ""));
    let field: Vec<&str> = field
        .split('.')
        .filter(|part| part.parse::<usize>().is_err())
        .collect();
    let rule = match rule.find(" is ") {
        Some(at) if !rule.starts_with("is ") => &rule[at + 1..],
        _ => rule,
    };
    let rule = rule.split(" (").next().unwrap_or(rule);
    format!("{}: {rule}", field.join("."))
}

#[test]
fn a_generated_mix_maps_to_user_objects_insider_accepts_and_refuses_only_what_cannot_be_sent() {
    let config: InsiderConfig = serde_json::from_value(
        json!({"partner_name": "mybrand", "request_token": "tok", "endpoint": "http://127.0.0.1:9/upsert"}),
    )
    .unwrap();
    let destination = Insider::build("insider", config).unwrap();
    let context = MapContext::at(UNIX_EPOCH + Duration::from_secs(NOW));
    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(8),
        shapes: fastrand::Rng::with_seed(18),
    };
    let mut figures = Figures::default();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut notes: BTreeMap<String, usize> = BTreeMap::new();
    let (mut users, mut derived_ids, mut without_ids) = (0, 0, 0);
    let mut wrongly_refused = Vec::new();
    let mut violations = Vec::new();
    for index in 0..EVENTS {
        let (event, truth) = generator.event(index);
        *kinds.entry(truth.kind).or_default() += 1;
        if truth.kind == "purchase"
            && event.get("id").is_none()
            && !event["properties"]
                .as_object()
                .is_some_and(|p| p.contains_key("transaction_id") || p.contains_key("order_id"))
        {
            without_ids += 1;
        }
        let mapped = destination.map(&Event::from_value(event.clone()).unwrap(), &context);
        let mut count = |key: String| *outcomes.entry(key).or_default() += 1;
        match mapped {
            Ok(mapped) => {
                for action in [
                    NoteAction::Repaired,
                    NoteAction::Dropped,
                    NoteAction::Expired,
                ] {
                    if mapped.notes.iter().any(|n| n.action == action) {
                        *notes
                            .entry(format!("events with a field {}", action.as_str()))
                            .or_default() += 1;
                    }
                }
                if mapped
                    .notes
                    .iter()
                    .any(|n| n.field == "events.event_params.event_group_id")
                {
                    derived_ids += 1;
                }
                match mapped.outcome {
                    Outcome::Records(records) => {
                        count("delivered".into());
                        let mut sent = Vec::new();
                        for record in records {
                            users += 1;
                            let user: Value = serde_json::from_slice(&record.payload).unwrap();
                            let found = hardal_insider_simulator::validate_value(&user);
                            if !found.is_empty() {
                                violations.push(format!("{event}\n  → {user}\n  {found:?}"));
                            }
                            sent.push(user);
                        }
                        figures.count(&event, truth.kind, &sent);
                    }
                    Outcome::Skipped(reason) => {
                        figures.count(&event, truth.kind, &[]);
                        figures.skipped += 1;
                        count(format!("skipped: {reason} [{}]", truth.kind))
                    }
                    Outcome::Expired(rule) => {
                        figures.count(&event, truth.kind, &[]);
                        count(format!("expired: {rule}"))
                    }
                }
            }
            Err(error) => {
                figures.count(&event, truth.kind, &[]);
                let reason = reason_kind(&error.to_string());
                let required = matches!(truth.kind, "purchase" | "cart_view");
                if truth.valid_identifier && (!required || truth.derivable) {
                    wrongly_refused.push(format!("{event}\n  {error}"));
                }
                count(format!("refused: {reason}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} refused by the simulator:\n{}",
        violations.len(),
        violations[..violations.len().min(5)].join("\n")
    );
    assert!(
        wrongly_refused.is_empty(),
        "{} refused with a valid identifier and a derivable required set:\n{}",
        wrongly_refused.len(),
        wrongly_refused[..wrongly_refused.len().min(5)].join("\n")
    );
    let mut report =
        format!("{EVENTS} events, {users} user objects, all accepted by the simulator\n");
    for (kind, n) in &kinds {
        report.push_str(&format!("kind {kind}: {n}\n"));
    }
    for (outcome, n) in &outcomes {
        report.push_str(&format!("{outcome}: {n}\n"));
    }
    for (note, n) in &notes {
        report.push_str(&format!("{note}: {n}\n"));
    }
    report.push_str(&format!(
        "purchases without an order id or event id: {without_ids}, delivered with a derived group id: {derived_ids}\n"
    ));
    let Figures {
        page_views,
        page_views_with_url,
        custom_with_product_fields,
        product_fields_under_custom,
        skipped,
    } = figures;
    report.push_str(&format!(
        "page views sent whose event has a URL: {page_views}, sent with a url: {page_views_with_url}\n\
         custom events with product fields: {custom_with_product_fields}, sent with them under custom: {product_fields_under_custom}\n\
         events skipped: {skipped}\n"
    ));
    expect_test::expect![[r#"
        12000 events, 10746 user objects, all accepted by the simulator
        kind add_to_cart: 1167
        kind cart_view: 788
        kind checkout: 803
        kind custom: 2370
        kind homepage: 627
        kind identify: 812
        kind listing_view: 722
        kind product_view: 1413
        kind purchase: 1933
        kind registration: 758
        kind remove_from_cart: 607
        delivered: 10746
        expired: cart_page_view events are kept 90 days: 9
        expired: checkout_page_view events are kept 90 days: 6
        expired: custom events are kept 90 days: 30
        expired: homepage_view events are kept 90 days: 6
        expired: item_added_to_cart events are kept 90 days: 13
        expired: item_removed_from_cart events are kept 90 days: 6
        expired: listing_page_view events are kept 90 days: 13
        expired: product_detail_page_view events are kept 90 days: 17
        expired: purchase events are kept 730 days: 10
        expired: sign_up_confirmation events are kept 365 days: 10
        refused: events.event_params.currency: is required on a cart_page_view event: 24
        refused: events.event_params.currency: is required on a purchase event: 70
        refused: events.event_params.quantity: is required on a purchase event: 21
        refused: events.event_params.unit_sale_price: is required on a cart_page_view event: 16
        refused: events.event_params.unit_sale_price: is required on a purchase event: 57
        refused: identifiers.email: is not an email address: 150
        refused: identifiers.phone_number: is not an E.164 phone number with country code: 42
        skipped: neither attributes nor events to send [identify]: 111
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [add_to_cart]: 58
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [cart_view]: 42
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [checkout]: 56
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [custom]: 117
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [homepage]: 35
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [identify]: 25
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [listing_view]: 36
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [product_view]: 79
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [purchase]: 108
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [registration]: 43
        skipped: no identifier to send (email, phone_number, uuid or a configured custom identifier) [remove_from_cart]: 23
        skipped: preset identify rendered nothing [identify]: 21
        events with a field dropped: 5688
        events with a field expired: 612
        events with a field repaired: 9878
        purchases without an order id or event id: 204, delivered with a derived group id: 181
        page views sent whose event has a URL: 399, sent with a url: 399
        custom events with product fields: 801, sent with them under custom: 0
        events skipped: 754
    "#]].assert_eq(&report);
}

/// FNV-1a, 64 bits: a digest that stays the same across Rust versions and platforms.
struct Digest(u64);

impl Digest {
    fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &byte in bytes.iter().chain(b"\x1f") {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The send path's output for 100,000 generated events — parsed from their text as `hardal send`
/// reads them, mapped with notes counted as it maps them — kept as one digest of every record
/// (request body bytes and ordering key), every outcome and every note, and of the request bodies
/// of consecutive records batched to the destination's limits. Making the send path faster must
/// leave every byte as it was; the digest is the one of the code before the speed work (87b27c9).
#[test]
fn the_send_path_output_for_100000_generated_events_is_unchanged() {
    let config: InsiderConfig = serde_json::from_value(
        json!({"partner_name": "mybrand", "request_token": "tok", "endpoint": "http://127.0.0.1:9/upsert"}),
    )
    .unwrap();
    let destination = Insider::build("insider", config).unwrap();
    let context = MapContext {
        notes: hardal_core::Notes::Counted,
        ..MapContext::at(UNIX_EPOCH + Duration::from_secs(NOW))
    };
    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(17),
        shapes: fastrand::Rng::with_seed(71),
    };
    let (mut digest, mut bodies) = (Digest::new(), Digest::new());
    let (mut records, mut batch_bytes, mut requests) = (Vec::new(), 0, 0);
    let limits = destination.batch_limits();
    let mut flush = |records: &mut Vec<hardal_core::Record>, bodies: &mut Digest| {
        if !records.is_empty() {
            let batch: Vec<&hardal_core::Record> = records.iter().collect();
            bodies.add(
                &destination
                    .encode(
                        &batch,
                        &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
                    )
                    .body,
            );
            records.clear();
            requests += 1;
        }
    };
    for index in 0..100_000 {
        let (event, _) = generator.event(index);
        let mut text = event.to_string();
        // Half the numeric user ids are made wider than 64 bits, which the parser keeps as their
        // exact digits: a faster parser must keep them so too.
        if let Some(Value::Number(id)) = event.get("user_id")
            && index % 2 == 0
        {
            let id = format!(r#""user_id":{id}"#);
            text = text.replacen(&id, &format!("{id}000000000000000000000"), 1);
        }
        // As `send` reads a line: the tree borrowing from the text.
        let event = Event::parse(&text).unwrap();
        match destination.map(&event, &context) {
            Ok(mapped) => {
                for note in &mapped.notes {
                    digest.add(note.action.as_str().as_bytes());
                    digest.add(note.field.as_bytes());
                    digest.add(note.rule.as_bytes());
                    digest.add(note.detail.as_bytes());
                }
                match mapped.outcome {
                    Outcome::Records(mapped) => {
                        for record in mapped {
                            digest.add(&record.payload);
                            digest.add(record.order_key.as_deref().unwrap_or("-").as_bytes());
                            if !destination.fits(records.len(), batch_bytes, record.payload.len()) {
                                flush(&mut records, &mut bodies);
                                batch_bytes = 0;
                            }
                            batch_bytes += record.payload.len();
                            records.push(record);
                        }
                    }
                    Outcome::Skipped(reason) => digest.add(format!("skipped {reason}").as_bytes()),
                    Outcome::Expired(rule) => digest.add(format!("expired {rule}").as_bytes()),
                }
            }
            Err(error) => digest.add(format!("refused {error}").as_bytes()),
        }
    }
    flush(&mut records, &mut bodies);
    assert!(limits.max_records > 1 && requests > 1);
    expect_test::expect![
        "records, outcomes and notes 644f3b913384c11d; 90 request bodies 5fc18565a9462178"
    ]
    .assert_eq(&format!(
        "records, outcomes and notes {:016x}; {requests} request bodies {:016x}",
        digest.0, bodies.0
    ));
}
