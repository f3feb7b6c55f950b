//! The `insider` destination end to end as data: configuration and fixture events in, request
//! bodies (or skips and rejections) out, reviewed in `tests/snapshots/`.

use expect_test::expect_file;
use hardal_core::{
    Destination, Event, MapContext, Mapped, Outcome, Record, registry::DestinationPlugin,
};
use hardal_insider::{Insider, InsiderConfig, PRESET_FILES};
use serde_json::{Value, json};

/// A fixed moment of mapping, so results never depend on when the tests run: 2025-01-01, a few
/// days after the fixture events.
fn context() -> MapContext {
    MapContext::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_600))
}

fn build(config: Value) -> Insider {
    let config: InsiderConfig = serde_json::from_value(config).unwrap();
    Insider::build("insider", config).unwrap()
}

fn base() -> Value {
    json!({"partner_name": "mybrand", "request_token": "tok", "endpoint": "http://127.0.0.1:9/upsert"})
}

fn with(extra: Value) -> Value {
    let mut config = base();
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// One block per event: a title line, the notes, then each request body pretty-printed, or the
/// skip, expiry or rejection reason.
fn render(destination: &Insider, events: &[Value]) -> String {
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        out.push_str(&format!("## {} {}\n", i + 1, event["event_name"]));
        let mapped = destination.map(&Event::from_value(event.clone()).unwrap(), &context());
        if let Ok(mapped) = &mapped {
            for note in &mapped.notes {
                out.push_str(&format!("note: {note}\n"));
            }
        }
        match mapped {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => {
                let batch: Vec<&Record> = records.iter().collect();
                let body: Value = serde_json::from_slice(
                    &destination
                        .encode(
                            &batch,
                            &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
                        )
                        .body,
                )
                .unwrap();
                out.push_str(&serde_json::to_string_pretty(&body).unwrap());
                out.push('\n');
            }
            Ok(Mapped {
                outcome: Outcome::Skipped(reason),
                ..
            }) => out.push_str(&format!("skipped: {reason}\n")),
            Ok(Mapped {
                outcome: Outcome::Expired(rule),
                ..
            }) => out.push_str(&format!("expired: {rule}\n")),
            Err(error) => out.push_str(&format!("rejected: {error}\n")),
        }
    }
    out
}

fn fixtures() -> Vec<Value> {
    let user = json!({"email": "ada@example.com", "name": "Ada", "country": "tr", "language": "tr-TR", "email_optin": "true"});
    vec![
        // purchase, GA4 items[]
        json!({"id": "e1", "event_name": "purchase", "created_at": "2024-12-19T12:45:39.659+03:00", "user_id": "u1", "user": user,
               "properties": {"transaction_id": "T-1", "currency": "try", "value": 120.5,
                              "items": [{"item_id": "SKU-1", "item_name": "Mug", "item_category": "Kitchen", "price": "60.25", "quantity": "2"},
                                        {"item_id": 77, "item_name": "Spoon", "price": 5, "quantity": 1, "currency": "EUR"}]}}),
        // purchase, products[] and an order id, epoch milliseconds
        json!({"id": "e2", "event_name": "Order Completed", "created_at": 1734601200000i64, "user_id": 42, "user": {"email": "b@example.com"},
               "properties": {"order_id": "O-9", "currency": "USD",
                              "products": [{"product_id": "P-1", "name": "Book", "category": "Books", "price": 10, "sale_price": 8, "quantity": 3,
                                            "url": "https://shop/p/1", "image_url": "https://cdn/p/1.jpg"}]}}),
        // purchase, the seed's flat properties, no order id (the event id groups it)
        json!({"id": "e3", "event_name": "purchase", "created_at": "1734601200", "user_id": "u3",
               "properties": {"product_id": "SKU-3", "product_name": "Tea", "price": "19.90", "currency": "TRY", "quantity": "3"}}),
        // purchase missing its currency: rejected by hardal, not sent to be rejected by Insider
        json!({"id": "e4", "event_name": "purchase", "created_at": "2024-12-19T09:00:00Z", "user_id": "u4",
               "properties": {"product_id": "SKU-4", "price": 1}}),
        // registration
        json!({"id": "e5", "event_name": "sign_up", "created_at": "2024-12-20T08:15:00Z", "user_id": "u5",
               "user": {"email": "c@example.com", "name": "Zoë", "email_optin": "0"}, "properties": {"registration_method": "google"}}),
        // identify: attributes only
        json!({"id": "e6", "event_name": "identify", "created_at": "2024-12-20T08:15:00Z", "user_id": "u6",
               "user": {"email": "d@example.com", "phone": "+90 532 123 45 67", "birthday": "1990-12-10", "sms_optin": "false", "surname": ""}}),
        // default: any other event, properties under custom, page fields as parameters
        json!({"id": "e7", "event_name": "Product Viewed", "created_at": "2024-12-20T12:00:00Z", "user_id": "u7",
               "page": {"url": "https://shop/p/1", "referrer": ""}, "properties": {"product_id": "P-1", "currency": "eur", "rating": 4.5, "tags": ["a", "b"], "dims": {"w": 1}}}),
        // anonymous: no identifier at all
        json!({"id": "e8", "event_name": "page_view", "created_at": "2024-12-20T12:00:00Z", "page": {"url": "https://shop/"}}),
    ]
}

#[test]
fn presets_with_defaults() {
    let destination = build(base());
    expect_file!["snapshots/defaults.txt"].assert_eq(&render(&destination, &fixtures()));
}

/// Commerce events in the shapes they arrive in: GA4 (`items[]`), Segment's spec (`products[]`
/// or flat properties) and others, with the repairs, left-out fields, derived ids and expiry that
/// real traffic needs.
fn commerce() -> Vec<Value> {
    let user = json!({"email": "ada@example.com", "country": "Türkiye", "language": "tr-TR"});
    let page = json!({"url": "https://shop/p/SKU-1", "referrer": "https://www.google.com/"});
    let at = "2024-12-28T10:00:00Z";
    vec![
        // product viewed, GA4, an array-valued category and a nested custom parameter
        json!({"id": "c1", "event_name": "view_item", "created_at": at, "user_id": "u1", "user": user, "page": page,
               "properties": {"currency": "TRY", "value": 60.25, "source": {"list": "search", "position": 3},
                              "items": [{"item_id": "SKU-1", "item_name": "Mug", "item_category": ["Home", "Kitchen"], "item_category2": "Mugs",
                                         "price": 60.25, "item_variant": "red", "item_brand": "Acme"}]}}),
        // product viewed, Segment flat properties; country as alpha-3
        json!({"id": "c2", "event_name": "Product Viewed", "created_at": at, "user_id": "u2", "user": {"email": "b@example.com", "country": "USA"},
               "properties": {"product_id": "P-1", "sku": "SKU-P1", "name": "Book", "category": "Books", "price": "12.5", "currency": "usd",
                              "url": "https://shop/p/P-1", "image_url": "https://cdn/p/P-1.jpg"}}),
        // added to cart, GA4 with two lines and a cart value
        json!({"id": "c3", "event_name": "add_to_cart", "created_at": at, "user_id": "u1", "user": user,
               "properties": {"currency": "TRY", "value": 72.25, "items": [{"item_id": "SKU-1", "price": 60.25, "quantity": 1}, {"item_id": "SKU-2", "price": 12, "quantity": "1"}]}}),
        // added to cart, Segment flat, with a cart id
        json!({"id": "c4", "event_name": "Product Added", "created_at": at, "user_id": "u2", "user": {"email": "b@example.com"},
               "properties": {"cart_id": "CART-9", "product_id": "P-1", "name": "Book", "price": 12.5, "quantity": 2, "currency": "USD"}}),
        // removed from cart, camelCase name
        json!({"id": "c5", "event_name": "productRemoved", "created_at": at, "user_id": "u2",
               "properties": {"cart_id": "CART-9", "product_id": "P-1", "price": 12.5, "quantity": 1, "currency": "USD"}}),
        // cart viewed, Segment products[] with a cart id
        json!({"id": "c6", "event_name": "Cart Viewed", "created_at": at, "user_id": "u2",
               "properties": {"cart_id": "CART-9", "currency": "USD", "products": [{"product_id": "P-1", "price": 12.5, "quantity": 1}]}}),
        // cart viewed, GA4 without any id: the group id is derived
        json!({"event_name": "view_cart", "created_at": at, "user_id": "u1",
               "properties": {"currency": "TRY", "items": [{"item_id": "SKU-1", "price": 60.25}]}}),
        // checkout started, camelCase, with a coupon
        json!({"id": "c8", "event_name": "checkoutStarted", "created_at": at, "user_id": "u2",
               "properties": {"order_id": "O-1", "coupon": "XMAS", "currency": "USD", "products": [{"product_id": "P-1", "price": 12.5}]}}),
        // a checkout step without products
        json!({"id": "c9", "event_name": "Checkout Step Viewed", "created_at": at, "user_id": "u2",
               "properties": {"checkout_id": "CH-1", "step": 2, "shipping_method": "express"}}),
        // product list, GA4
        json!({"id": "c10", "event_name": "view_item_list", "created_at": at, "user_id": "u1", "page": {"url": "https://shop/c/kitchen"},
               "properties": {"item_list_id": "kitchen", "item_list_name": "Kitchen", "items": [{"item_id": "SKU-1"}, {"item_id": "SKU-2"}]}}),
        // category viewed
        json!({"id": "c11", "event_name": "Category Viewed", "created_at": at, "user_id": "u1", "properties": {"category": "Books", "url": "https://shop/c/books"}}),
        // home page
        json!({"id": "c12", "event_name": "Home Page Viewed", "created_at": at, "user_id": "u1", "page": {"url": "https://shop/", "referrer": "https://www.google.com/"}}),
        // purchase without an order id or an event id: derived id; order-level properties under custom
        json!({"event_name": "purchase", "created_at": at, "user_id": "u1", "user": user,
               "properties": {"currency": "TRY", "value": 132.5, "coupon": "XMAS", "shipping": 10, "tax": 12.05, "payment_method": "card",
                              "items": [{"item_id": "SKU-1", "price": 60.25, "quantity": 2}]}}),
        // purchase with a line priced "x": that line is left out, the order sent
        json!({"id": "c14", "event_name": "purchase", "created_at": at, "user_id": "u1",
               "properties": {"transaction_id": "T-14", "currency": "TRY",
                              "items": [{"item_id": "SKU-1", "price": 60.25, "quantity": 1}, {"item_id": "SKU-2", "price": "x", "quantity": 1}]}}),
        // an email identifier that is not an email, beside a valid uuid
        json!({"id": "c15", "event_name": "purchase", "created_at": at, "user_id": "u3", "user": {"email": "ada(at)example.com", "country": "Atlantis"},
               "properties": {"order_id": "O-15", "currency": "EUR", "price": 5, "product_id": "SKU-5"}}),
        // a purchase older than Insider keeps purchases (730 days)
        json!({"id": "c16", "event_name": "purchase", "created_at": "2022-06-01T00:00:00Z", "user_id": "u1",
               "properties": {"transaction_id": "T-OLD", "currency": "TRY", "price": 5, "product_id": "SKU-1"}}),
        // a product view older than 90 days, with attributes to send
        json!({"id": "c17", "event_name": "view_item", "created_at": "2024-06-01T00:00:00Z", "user_id": "u1", "user": {"name": "Ada"},
               "properties": {"items": [{"item_id": "SKU-1"}]}}),
    ]
}

#[test]
fn commerce_presets() {
    let destination = build(base());
    expect_file!["snapshots/commerce.txt"].assert_eq(&render(&destination, &commerce()));
}

/// The corners the cross-check with Segment's destination found: page URLs and referrers in the
/// event's properties (Segment's `page_url`, GA4's `page_location` and `page_referrer`), product
/// fields on events no commerce preset selects, and standard events without what their preset
/// needs.
fn corners() -> Vec<Value> {
    let at = "2024-12-28T10:00:00Z";
    vec![
        // a page view whose URL and referrer are properties, as Segment's page calls carry them
        json!({"id": "k1", "event_name": "page_view", "created_at": at, "user_id": "u1",
               "properties": {"page_url": "https://shop/c/kitchen", "referrer": "https://www.google.com/", "page_type": "category"}}),
        // GA4's page_view: page_location, page_referrer and page_title on every event
        json!({"id": "k2", "event_name": "page_view", "created_at": at, "user_id": "u2",
               "properties": {"page_location": "https://shop/", "page_referrer": "https://t.co/x", "page_title": "Shop"}}),
        // both the page object and a property: the property, as the other presets read it
        json!({"id": "k3", "event_name": "search", "created_at": at, "user_id": "u3",
               "page": {"url": "https://shop/search", "referrer": "https://shop/"},
               "properties": {"page_url": "https://shop/search?q=mug", "search_term": "mug"}}),
        // a home page and a listing with GA4's page fields
        json!({"id": "k4", "event_name": "homepage_view", "created_at": at, "user_id": "u4",
               "properties": {"page_location": "https://shop/", "page_referrer": "https://www.google.com/"}}),
        json!({"id": "k5", "event_name": "view_item_list", "created_at": at, "user_id": "u5",
               "properties": {"item_list_name": "Kitchen", "page_location": "https://shop/c/kitchen"}}),
        // product fields on an event no commerce preset selects: Insider's default parameters
        json!({"id": "k6", "event_name": "wishlist_add", "created_at": at, "user_id": "u6",
               "properties": {"product_id": "SKU-1", "product_name": "Mug", "price": "19.90", "sale_price": 14.5,
                              "currency": "try", "quantity": "1", "image_url": "https://cdn/1.jpg", "list": "favourites"}}),
        json!({"id": "k7", "event_name": "Product Shared", "created_at": at, "user_id": "u7",
               "properties": {"item_id": 77, "item_name": "Spoon", "price": 5, "share_via": "email"}}),
        // a standard event without its product: nothing of the preset's event can be sent
        json!({"id": "k8", "event_name": "productViewed", "created_at": at, "user_id": "u8",
               "page": {"url": "https://shop/p/unknown"}}),
        json!({"id": "k9", "event_name": "add_to_cart", "created_at": at, "user_id": "u9", "user": {"email": "i@example.com"},
               "properties": {"items": [], "cart_id": "C-9"}}),
        json!({"id": "k10", "event_name": "purchase", "created_at": at, "user_id": "u10"}),
    ]
}

#[test]
fn mapping_corners() {
    let destination = build(base());
    expect_file!["snapshots/corners.txt"].assert_eq(&render(&destination, &corners()));
    // Without the `default` preset nothing sends a custom event.
    let without_default = build(with(
        json!({"presets": ["product_view", "add_to_cart", "purchase"]}),
    ));
    expect_file!["snapshots/corners-without-default.txt"]
        .assert_eq(&render(&without_default, &corners()[7..]));
}

#[test]
fn commerce_presets_rejecting_invalid_fields() {
    let destination = build(with(json!({"on_invalid_field": "reject"})));
    let events: Vec<Value> = commerce()
        .into_iter()
        .filter(|e| ["c1", "c2", "c14", "c15"].contains(&e["id"].as_str().unwrap_or("")))
        .collect();
    expect_file!["snapshots/commerce-reject.txt"].assert_eq(&render(&destination, &events));
}

/// The names each preset selects: the base names in every spelling (snake_case, camelCase,
/// PascalCase, Title Case, lower case), and the Insider event they become.
const PRESET_NAMES: &[(&str, &[&str], &str)] = &[
    (
        "purchase",
        &[
            "purchase",
            "order_completed",
            "checkout_completed",
            "transaction",
            "ecommerce_purchase",
            "order_placed",
            "purchase_completed",
        ],
        "purchase",
    ),
    (
        "product_view",
        &[
            "view_item",
            "product_viewed",
            "product_view",
            "view_product",
            "product_detail_view",
            "product_page_view",
            "product_detail_page_view",
        ],
        "product_detail_page_view",
    ),
    (
        "add_to_cart",
        &[
            "add_to_cart",
            "product_added",
            "added_to_cart",
            "item_added_to_cart",
            "product_added_to_cart",
        ],
        "item_added_to_cart",
    ),
    (
        "remove_from_cart",
        &[
            "remove_from_cart",
            "product_removed",
            "removed_from_cart",
            "item_removed_from_cart",
            "product_removed_from_cart",
        ],
        "item_removed_from_cart",
    ),
    (
        "cart_view",
        &["view_cart", "cart_viewed", "cart_view", "cart_page_view"],
        "cart_page_view",
    ),
    (
        "checkout",
        &[
            "begin_checkout",
            "checkout_started",
            "start_checkout",
            "initiate_checkout",
            "checkout_step_viewed",
            "checkout_step",
            "checkout_viewed",
            "checkout_page_view",
            "add_shipping_info",
            "add_payment_info",
        ],
        "checkout_page_view",
    ),
    (
        "listing_view",
        &[
            "view_item_list",
            "product_list_viewed",
            "product_list_filtered",
            "category_viewed",
            "view_category",
            "category_page_view",
            "listing_page_view",
            "listing_viewed",
        ],
        "listing_page_view",
    ),
    (
        "homepage",
        &[
            "homepage_view",
            "home_page_view",
            "homepage_viewed",
            "home_page_viewed",
            "view_homepage",
            "view_home_page",
        ],
        "homepage_view",
    ),
    (
        "registration",
        &[
            "registration",
            "sign_up",
            "signup",
            "sign_up_completed",
            "register",
            "user_registered",
            "account_created",
            "signed_up",
            "sign_up_confirmation",
        ],
        "sign_up_confirmation",
    ),
];

/// `add_to_cart` → `add_to_cart`, `addToCart`, `AddToCart`, `Add To Cart`, `add to cart`.
fn spellings(base: &str) -> Vec<String> {
    let words: Vec<&str> = base.split('_').collect();
    let capital = |w: &str| w[..1].to_uppercase() + &w[1..];
    let mut out = vec![
        base.to_owned(),
        words[0].to_owned() + &words[1..].iter().map(|w| capital(w)).collect::<String>(),
        words.iter().map(|w| capital(w)).collect(),
        words
            .iter()
            .map(|w| capital(w))
            .collect::<Vec<_>>()
            .join(" "),
        words.join(" "),
    ];
    out.dedup();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_spelling_of_every_preset_name_maps_to_its_insider_event() {
    let destination = build(base());
    let mut report = String::new();
    for (preset, bases, insider_event) in PRESET_NAMES {
        let mut listed: Vec<String> = serde_json::from_str::<Value>(
            PRESET_FILES
                .iter()
                .find(|(name, _)| name == preset)
                .unwrap()
                .1,
        )
        .unwrap()["when"]["event_name"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        let mut expected: Vec<String> = bases.iter().flat_map(|b| spellings(b)).collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected, "the names the {preset} preset selects");
        for name in &expected {
            let event = json!({"id": "e", "event_name": name, "created_at": "2024-12-30T00:00:00Z", "user_id": "u",
                               "properties": {"product_id": "P", "price": 5, "currency": "EUR", "quantity": 1}});
            let mapped = destination
                .map(&Event::from_value(event).unwrap(), &context())
                .unwrap();
            let records = mapped
                .into_records()
                .unwrap_or_else(|| panic!("{name}: nothing sent"));
            let user: Value = serde_json::from_slice(&records[0].payload).unwrap();
            assert_eq!(
                user["events"][0]["event_name"], *insider_event,
                "{name:?} ({preset})"
            );
        }
        report.push_str(&format!(
            "{preset}: {} names → {insider_event}\n",
            expected.len()
        ));
    }
    expect_test::expect![[r#"
        purchase: 29 names → purchase
        product_view: 35 names → product_detail_page_view
        add_to_cart: 25 names → item_added_to_cart
        remove_from_cart: 25 names → item_removed_from_cart
        cart_view: 20 names → cart_page_view
        checkout: 50 names → checkout_page_view
        listing_view: 40 names → listing_page_view
        homepage: 30 names → homepage_view
        registration: 36 names → sign_up_confirmation
    "#]]
    .assert_eq(&report);
}

#[test]
fn renamed_events_skip_hook_appending_and_custom_identifiers() {
    let destination = build(with(json!({
        "event_names": {"registration": "registration"},
        "skip_hook": true,
        "append_arrays": true,
        "identifiers": ["uuid", "hardal_id"],
        "presets": ["registration", "purchase"]
    })));
    expect_file!["snapshots/options.txt"].assert_eq(&render(&destination, &fixtures()));
}

#[test]
fn user_mappings_come_before_presets_and_follow_the_same_rules() {
    let destination = build(with(json!({
        "mappings": [
            {"when": {"event_name": "purchase"},
             "user": {"identifiers": {"uuid": "##user_id##"},
                      "events": [{"event_name": "Big Purchase", "timestamp": "##created_at##",
                                  "event_params": {"event_group_id": "##id##", "currency": "##properties.currency##",
                                                   "unit_sale_price": "##properties.value ?? 0##", "quantity": 1, "channel": "web"}}]}},
            {"when": {"event_name": "identify"},
             "user": [{"identifiers": {"uuid": "##user_id##"}, "attributes": {"birthday": "##user.birthday##"}},
                      {"identifiers": {"email": "##user.email##"}, "attributes": {"sms_optin": "##user.sms_optin##"}}]}
        ]
    })));
    expect_file!["snapshots/mappings.txt"].assert_eq(&render(&destination, &fixtures()));
}

#[test]
fn bad_configurations_report_every_problem() {
    let config: InsiderConfig = serde_json::from_value(with(json!({
        "endpoint": "ftp://x",
        "event_names": {"default": "x", "purchase": "Big Buy"},
        "presets": ["purchase", "purchase"],
        "identifiers": ["custom"],
        "retention_days": {"Order Completed": 800, "purchase": 1095},
        "mappings": [{"when": {"event_name": null}, "user": {"identifiers": {"uuid": "##user_id"}}}]
    })))
    .unwrap();
    let errors: Vec<String> = Insider::build("i", config)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    expect_test::expect![[r###"
        /endpoint: `ftp://x` is not an http:// or https:// URL
        /mappings/0/when/event_name: null never matches (missing and null are the same); use {"exists": false}
        /mappings/0/user/identifiers/uuid: unclosed "##" in "##user_id" (at character 1); write #### for a literal ##
        /event_names/purchase: `Big Buy` is not an Insider event name (lower case letters, digits and _)
        /event_names/default: the default preset sends no event of its own name to rename
        /retention_days/Order Completed: `Order Completed` is not an Insider event name (lower case letters, digits and _)
        /presets/1: preset `purchase` is listed twice
        /identifiers/0: `custom` is not an identifier name
    "###]]
    .assert_eq(&(errors.join("\n") + "\n"));
}

#[test]
fn preset_files_are_valid_and_listed_by_the_plugin() {
    for (name, text) in PRESET_FILES {
        let file: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        hardal_core::Template::compile(&file["user"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let when: hardal_core::WhenConfig = serde_json::from_value(file["when"].clone()).unwrap();
        hardal_core::Condition::compile(&when).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let plugin = DestinationPlugin::find("insider").expect("registered");
    assert_eq!(
        plugin.presets.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [
            "purchase",
            "product_view",
            "add_to_cart",
            "remove_from_cart",
            "cart_view",
            "checkout",
            "listing_view",
            "homepage",
            "registration",
            "identify",
            "default"
        ]
    );
}

#[test]
fn batches_never_exceed_the_user_or_byte_limit() {
    // Users of very different sizes, up to ~300 KB each, packed greedily as the runner does.
    let destination = build(with(json!({"max_users_per_request": 1000})));
    let mut records = Vec::new();
    for i in 0..2500u32 {
        let blob = "x".repeat(((i * 7919) % 300) as usize * if i % 50 == 0 { 1000 } else { 1 });
        let event = json!({"event_name": "note", "created_at": "2024-12-19T09:00:00Z", "user_id": format!("u{i}"),
                           "properties": {"blob": blob}});
        match destination
            .map(&Event::from_value(event).unwrap(), &context())
            .unwrap()
        {
            Mapped {
                outcome: Outcome::Records(r),
                ..
            } => records.extend(r),
            other => panic!("{other:?}"),
        }
    }
    let limits = destination.batch_limits();
    let (mut start, mut requests) = (0, 0);
    while start < records.len() {
        let (mut end, mut bytes) = (start, 0);
        while end < records.len()
            && (end == start || destination.fits(end - start, bytes, records[end].payload.len()))
        {
            bytes += records[end].payload.len();
            end += 1;
        }
        let batch: Vec<&Record> = records[start..end].iter().collect();
        let body = destination
            .encode(
                &batch,
                &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
            )
            .body;
        assert_eq!(
            body.len(),
            destination.body_size(batch.len(), bytes),
            "exact size"
        );
        assert!(body.len() <= limits.max_bytes && batch.len() <= limits.max_records);
        if end < records.len() {
            // Greedy and tight: the next record would not have fit.
            assert!(!destination.fits(batch.len(), bytes, records[end].payload.len()));
        }
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["users"].as_array().unwrap().len(), batch.len());
        start = end;
        requests += 1;
    }
    assert!(
        requests >= 3,
        "the large users must have forced byte-limited requests ({requests})"
    );
}

#[test]
fn a_user_larger_than_a_request_is_rejected_not_sent() {
    let destination = build(with(json!({"max_bytes_per_request": 1000})));
    let event = json!({"event_name": "note", "created_at": "2024-12-19T09:00:00Z", "user_id": "u", "properties": {"blob": "x".repeat(2000)}});
    let error = destination
        .map(&Event::from_value(event).unwrap(), &context())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("more than one request may carry (1000)"),
        "{error}"
    );
}

#[test]
fn an_event_with_a_hundred_thousand_custom_attributes_maps_in_linear_time() {
    // Every key is unknown to Insider, so each is moved under `custom` one by one: a quadratic
    // search would take minutes here.
    let destination = build(with(
        json!({"max_bytes_per_request": 10_000_000, "mappings": [
        {"when": {}, "user": {"identifiers": {"uuid": "##user_id##"}, "attributes": "##properties##"}}]}),
    ));
    let properties: serde_json::Map<String, Value> =
        (0..100_000).map(|i| (format!("p{i}"), json!(i))).collect();
    let event = json!({"event_name": "note", "user_id": "u", "properties": properties});
    let records = destination
        .map(&Event::from_value(event).unwrap(), &context())
        .unwrap()
        .into_records()
        .expect("records");
    let user: Value = serde_json::from_slice(&records[0].payload).unwrap();
    let custom = user["attributes"]["custom"].as_object().unwrap();
    assert_eq!(custom.len(), 100_000);
    assert_eq!(custom["p99999"], 99_999);
}

/// The `event_group_id` of every Insider event a destination sends for `event`.
fn group_ids(destination: &Insider, event: &Value) -> Vec<String> {
    let mapped = destination
        .map(&Event::from_value(event.clone()).unwrap(), &context())
        .unwrap();
    let mut ids = Vec::new();
    for record in mapped.into_records().expect("records") {
        let user: Value = serde_json::from_slice(&record.payload).unwrap();
        for event in user["events"].as_array().unwrap() {
            ids.push(
                event["event_params"]["event_group_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    ids
}

#[test]
fn a_purchase_without_ids_gets_the_same_derived_group_id_on_every_run() {
    let purchase = json!({"event_name": "purchase", "created_at": "2024-12-28T10:00:00Z", "user_id": "u1",
                          "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": 5}, {"item_id": "B", "price": 7}]}});
    let first = group_ids(&build(base()), &purchase);
    // Another destination built from the same configuration: a re-run, another process.
    let again = group_ids(&build(base()), &purchase);
    assert_eq!(first, again);
    // Every line of the order shares it.
    assert_eq!(first.len(), 2);
    assert_eq!(first[0], first[1]);
    expect_test::expect!["hardal-5ca97c6244c889b5d634a346a56f958b"].assert_eq(&first[0]);
    // Another purchase — another user, time, or content — gets another id.
    let mut others = Vec::new();
    for (path, value) in [
        ("/user_id", json!("u2")),
        ("/created_at", json!("2024-12-28T10:00:01Z")),
        ("/properties/items/1/price", json!(8)),
    ] {
        let mut other = purchase.clone();
        *other.pointer_mut(path).unwrap() = value;
        let id = group_ids(&build(base()), &other)[0].clone();
        assert_ne!(id, first[0], "{path}");
        others.push(id);
    }
    others.sort();
    others.dedup();
    assert_eq!(others.len(), 3);
    // An order id, or the event id, is used as it is.
    let mut with_id = purchase.clone();
    with_id["id"] = json!("evt-9");
    assert_eq!(group_ids(&build(base()), &with_id), ["evt-9", "evt-9"]);
}
