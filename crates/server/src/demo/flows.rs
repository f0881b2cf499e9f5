//! The shoppers and the shop's own jobs: which traces are generated, in which order.
//!
//! A run is a sequence of trace slots, one every `1 / rate` seconds of simulated time (later
//! when the previous trace is still running: the world is sequential). Each slot is either a
//! price update (an operator changing a price through the gateway) or the next step of one of
//! [`ACTIVE_SESSIONS`] concurrent cart sessions, picked at random. Because a slot waits for
//! the previous trace to end, slow traces lower the rate actually reached, as in a closed
//! system whose users wait for each page (under `slow-inventory`, to a few traces per second):
//!
//! ```text
//! browse ×1–3 ─> (add to cart ─> view cart?) ×1–3 ─> checkout (75 %) ─> order consumers
//! ```
//!
//! - browse: gateway → catalog (gRPC, price read at ONE) → reviews (HTTP, SQL) → inventory
//!   (gRPC, stock query);
//! - add: gateway → cart (gRPC): cart read at LOCAL_QUORUM, stock check, cart write;
//! - view: the session's region, or (35 %) another one the shopper's traffic was routed to:
//!   gateway → cart (gRPC): cart read at ONE there — empty or short when replication lags;
//! - checkout: gateway → cart (read at QUORUM) → order (gRPC) → payment (HTTP; 4 % declined
//!   with an exception) → order row → message `orders` produced → cart cleared; then two
//!   consumer traces (inventory reserves stock, order fulfils), each linked to the producer
//!   span, carrying the trace context of the message.
//!
//! The cart session's spans carry `business_process.id=cart-<n>`; the spans of the order
//! (order and payment in the checkout trace, the consumer traces) `order-<n>`, also as received
//! in baggage.

use sextant_model::{KeyValue, Link, SpanId, SpanKind, TraceId};

use super::scenario::Scenario;
use super::spans::{TraceBuilder, int, record_exception, string};
use super::store::Level;
use super::topology::{Endpoint, Region, Service};
use super::truth::Record;
use super::world::{Collection, World};

/// Cart sessions in progress at any time.
pub const ACTIVE_SESSIONS: usize = 8;
/// Products in the catalog.
const PRODUCTS: u64 = 40;
/// The products whose prices are updated (the hot keys of price conflicts).
const HOT_PRODUCTS: u64 = 4;
const ROAMING_PROBABILITY: f64 = 0.35;
const CHECKOUT_PROBABILITY: f64 = 0.75;
const PAYMENT_DECLINE_PROBABILITY: f64 = 0.04;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Browse,
    AddToCart,
    ViewCart,
    Checkout,
}

struct Session {
    id: u64,
    home: Region,
    /// Steps still to run, next last.
    steps: Vec<Step>,
    /// Items the shopper has put in the cart.
    items: i64,
    /// Trace IDs of the session's traces, in order.
    trace_ids: Vec<String>,
}

/// The whole simulation: the world and the shoppers in it.
pub struct Simulation {
    pub world: World,
    start_unix_nanos: u64,
    interval_nanos: u64,
    /// Slots generated so far.
    pub num_slots: u64,
    sessions: Vec<Session>,
    next_session: u64,
    next_order: u64,
    next_message: u64,
}

fn sku(product: u64) -> String {
    format!("SKU-{product:04}")
}

impl Simulation {
    pub fn new(seed: u64, scenario: Scenario, start_unix_nanos: u64, traces_per_second: f64) -> Simulation {
        let mut simulation = Simulation {
            world: World::new(seed, scenario, start_unix_nanos),
            start_unix_nanos,
            interval_nanos: (1e9 / traces_per_second.max(1e-3)) as u64,
            num_slots: 0,
            sessions: Vec::new(),
            next_session: 0,
            next_order: 0,
            next_message: 0,
        };
        simulation.world.record(Record::Scenario { scenario, trace_index: 0, at_unix_nanos: start_unix_nanos });
        simulation
    }

    /// Switches the scenario from the next slot on.
    pub fn set_scenario(&mut self, scenario: Scenario) {
        self.world.scenario = scenario;
        let at_unix_nanos = self.world.now;
        self.world.record(Record::Scenario { scenario, trace_index: self.num_slots, at_unix_nanos });
    }

    /// When the next slot starts.
    pub fn next_slot_unix_nanos(&self) -> u64 {
        (self.start_unix_nanos + self.num_slots * self.interval_nanos).max(self.world.now)
    }

    /// Generates the traces of the next slot.
    pub fn step(&mut self) {
        let start = self.next_slot_unix_nanos();
        let pause = start - self.world.now;
        self.world.advance(pause);
        self.num_slots += 1;
        if self.world.rng.unit() < self.world.scenario.price_update_probability() {
            self.price_update();
            return;
        }
        while self.sessions.len() < ACTIVE_SESSIONS {
            let session = self.new_session();
            self.sessions.push(session);
        }
        let index = self.world.rng.below(self.sessions.len() as u64) as usize;
        let step = self.sessions[index].steps.pop().expect("sessions in the pool have steps left");
        let trace_id = match step {
            Step::Browse => self.browse(index),
            Step::AddToCart => self.add_to_cart(index),
            Step::ViewCart => self.view_cart(index),
            Step::Checkout => self.checkout(index),
        };
        self.sessions[index].trace_ids.push(trace_id);
        if self.sessions[index].steps.is_empty() {
            let session = self.sessions.swap_remove(index);
            self.world.record(Record::Process { id: format!("cart-{}", session.id), trace_ids: session.trace_ids });
        }
    }

    /// Ends the run: lets the replications in flight land and closes the sessions in progress.
    pub fn finish(&mut self) {
        self.world.drain_replication();
        for session in std::mem::take(&mut self.sessions) {
            if !session.trace_ids.is_empty() {
                self.world.record(Record::Process { id: format!("cart-{}", session.id), trace_ids: session.trace_ids });
            }
        }
    }

    fn new_session(&mut self) -> Session {
        let rng = &mut self.world.rng;
        let id = self.next_session;
        self.next_session += 1;
        let home = Region(rng.below(3) as usize);
        let mut steps = Vec::new();
        for _ in 0..1 + rng.below(3) {
            steps.push(Step::Browse);
        }
        for _ in 0..1 + rng.below(3) {
            steps.push(Step::AddToCart);
            if rng.unit() < 0.8 {
                steps.push(Step::ViewCart);
            }
        }
        if rng.unit() < CHECKOUT_PROBABILITY {
            steps.push(Step::Checkout);
        }
        steps.reverse();
        Session { id, home, steps, items: 0, trace_ids: Vec::new() }
    }

    fn cart_key(&self, index: usize) -> String {
        format!("{}:{}", Collection::Carts.name(), self.sessions[index].id)
    }

    fn process(&self, index: usize) -> Option<String> {
        Some(format!("cart-{}", self.sessions[index].id))
    }

    fn browse(&mut self, index: usize) -> String {
        let process = self.process(index);
        let world = &mut self.world;
        let region = self.sessions[index].home;
        let product = sku(world.rng.below(PRODUCTS));
        let mut trace = world.new_trace(process);
        let [gateway, catalog, reviews] =
            [Service::Gateway, Service::Catalog, Service::Reviews].map(|s| world.endpoint(s, region));
        world.http(&mut trace, (None, None), gateway, ("GET", "/products/{sku}"), |world, trace, root| {
            world.grpc(
                trace,
                (root, gateway),
                catalog,
                ("shop.CatalogService", "GetProduct"),
                |world, trace, parent| {
                    let key = format!("{}:{product}", Collection::Prices.name());
                    world.store_read(trace, parent, catalog, (Collection::Prices, &key), Level::One);
                    0
                },
            );
            world.http(
                trace,
                (Some(root), Some(gateway)),
                reviews,
                ("GET", "/reviews/{sku}"),
                |world, trace, parent| {
                    let query =
                        "SELECT author, stars, body FROM reviews WHERE sku = $1 ORDER BY created_at DESC LIMIT 20";
                    world.sql(trace, parent, reviews, ("SELECT", "reviews", query), (0.5, 6.0));
                    200
                },
            );
            stock_lookup(world, trace, (root, gateway), region);
            200
        });
        let trace_id = trace.trace_id.to_hex();
        world.finish_trace(trace);
        trace_id
    }

    fn add_to_cart(&mut self, index: usize) -> String {
        let key = self.cart_key(index);
        let region = self.sessions[index].home;
        let items = self.sessions[index].items;
        let process = self.process(index);
        let world = &mut self.world;
        let mut trace = world.new_trace(process);
        let (gateway, cart) = (world.endpoint(Service::Gateway, region), world.endpoint(Service::Cart, region));
        world.http(&mut trace, (None, None), gateway, ("POST", "/cart/items"), |world, trace, root| {
            world.grpc(trace, (root, gateway), cart, ("shop.CartService", "AddItem"), |world, trace, parent| {
                world.store_read(trace, parent, cart, (Collection::Carts, &key), Level::LocalQuorum);
                stock_lookup(world, trace, (parent, cart), region);
                world.store_write(trace, parent, cart, (Collection::Carts, &key), (Level::LocalQuorum, items + 1));
                0
            });
            201
        });
        self.sessions[index].items += 1;
        let trace_id = trace.trace_id.to_hex();
        self.world.finish_trace(trace);
        trace_id
    }

    fn view_cart(&mut self, index: usize) -> String {
        let key = self.cart_key(index);
        let home = self.sessions[index].home;
        let process = self.process(index);
        let world = &mut self.world;
        let region = if world.rng.unit() < ROAMING_PROBABILITY {
            Region((home.0 + 1 + world.rng.below(2) as usize) % 3)
        } else {
            home
        };
        let mut trace = world.new_trace(process);
        let (gateway, cart) = (world.endpoint(Service::Gateway, region), world.endpoint(Service::Cart, region));
        world.http(&mut trace, (None, None), gateway, ("GET", "/cart"), |world, trace, root| {
            world.grpc(trace, (root, gateway), cart, ("shop.CartService", "GetCart"), |world, trace, parent| {
                let read = world.store_read(trace, parent, cart, (Collection::Carts, &key), Level::One);
                trace.span_with_id(parent).attributes.push(int("cart.item_count", read.value));
                0
            });
            200
        });
        let trace_id = trace.trace_id.to_hex();
        world.finish_trace(trace);
        trace_id
    }

    fn price_update(&mut self) {
        let world = &mut self.world;
        let product = sku(world.rng.below(HOT_PRODUCTS));
        let key = format!("{}:{product}", Collection::Prices.name());
        let first = Region(world.rng.below(3) as usize);
        let regions = if world.scenario.concurrent_price_updates() {
            vec![first, Region((first.0 + 1 + world.rng.below(2) as usize) % 3)]
        } else {
            vec![first]
        };
        for region in regions {
            let price_cents = 500 + world.rng.below(20_000) as i64;
            let mut trace = world.new_trace(None);
            let (gateway, catalog) =
                (world.endpoint(Service::Gateway, region), world.endpoint(Service::Catalog, region));
            world.http(
                &mut trace,
                (None, None),
                gateway,
                ("PUT", "/admin/products/{sku}/price"),
                |world, trace, root| {
                    world.grpc(
                        trace,
                        (root, gateway),
                        catalog,
                        ("shop.CatalogService", "UpdatePrice"),
                        |world, trace, parent| {
                            world.store_write(
                                trace,
                                parent,
                                catalog,
                                (Collection::Prices, &key),
                                (Level::LocalQuorum, price_cents),
                            );
                            0
                        },
                    );
                    204
                },
            );
            world.finish_trace(trace);
            world.wait_millis(1.0, 8.0);
        }
    }

    fn checkout(&mut self, index: usize) -> String {
        let key = self.cart_key(index);
        let region = self.sessions[index].home;
        let order_process = format!("order-{}", self.next_order);
        self.next_order += 1;
        let message_id = format!("msg-{:08}", self.next_message);
        self.next_message += 1;
        let process = self.process(index);
        let world = &mut self.world;
        let declined = world.rng.unit() < PAYMENT_DECLINE_PROBABILITY;
        let mut trace = world.new_trace(process);
        let [gateway, cart, order, payment] =
            [Service::Gateway, Service::Cart, Service::Order, Service::Payment].map(|s| world.endpoint(s, region));
        let mut produced = None;
        let status = world.http(&mut trace, (None, None), gateway, ("POST", "/checkout"), |world, trace, root| {
            world.grpc(trace, (root, gateway), cart, ("shop.CartService", "GetCart"), |world, trace, parent| {
                world.store_read(trace, parent, cart, (Collection::Carts, &key), Level::Quorum);
                0
            });
            let cart_process = trace.process_id.replace(order_process.clone());
            trace.process_in_baggage = true;
            let code = world.grpc(
                trace,
                (root, gateway),
                order,
                ("shop.OrderService", "PlaceOrder"),
                |world, trace, parent| {
                    let paid = world.http(
                        trace,
                        (Some(parent), Some(order)),
                        payment,
                        ("POST", "/payments"),
                        |world, trace, parent| {
                            let query = "INSERT INTO payments (order_id, amount_cents, status) VALUES ($1, $2, $3)";
                            world.sql(trace, parent, payment, ("INSERT", "payments", query), (1.0, 8.0));
                            world.wait_millis(20.0, 250.0); // the card network
                            if declined {
                                let now = world.now;
                                let span = trace.span_with_id(parent);
                                record_exception(
                                    span,
                                    "PaymentDeclinedError",
                                    "card declined: insufficient funds",
                                    now,
                                );
                                402
                            } else {
                                201
                            }
                        },
                    );
                    if paid != 201 {
                        return 9; // FAILED_PRECONDITION
                    }
                    let query = "INSERT INTO orders (order_id, cart_id, status) VALUES ($1, $2, 'placed')";
                    world.sql(trace, parent, order, ("INSERT", "orders", query), (1.0, 6.0));
                    let attributes = messaging_attributes("send", &message_id);
                    let producer =
                        world.open(trace, Some(parent), order, "send orders", SpanKind::Producer, attributes);
                    world.wait_millis(0.5, 4.0);
                    trace.close(producer, world.now);
                    produced = Some(producer.span_id);
                    0
                },
            );
            trace.process_id = cart_process;
            trace.process_in_baggage = false;
            if code != 0 {
                return 402;
            }
            world.grpc(trace, (root, gateway), cart, ("shop.CartService", "ClearCart"), |world, trace, parent| {
                world.store_write(trace, parent, cart, (Collection::Carts, &key), (Level::LocalQuorum, 0));
                0
            });
            201
        });
        if status == 201 {
            self.sessions[index].items = 0;
        }
        let checkout_trace = (trace.trace_id, trace.trace_id.to_hex());
        self.world.finish_trace(trace);
        let mut order_traces = vec![checkout_trace.1.clone()];
        if let Some(producer) = produced {
            for service in [Service::Inventory, Service::Order] {
                let consumer = self.consume((checkout_trace.0, producer), &message_id, &order_process, service, region);
                order_traces.push(consumer);
            }
        }
        self.world.record(Record::Process { id: order_process, trace_ids: order_traces });
        checkout_trace.1
    }

    /// A consumer of the `orders` topic handling the message produced by `producer`: a new
    /// trace, linked to the producer span whose context travelled in the message headers.
    fn consume(
        &mut self,
        producer: (TraceId, SpanId),
        message_id: &str,
        order_process: &str,
        service: Service,
        region: Region,
    ) -> String {
        let world = &mut self.world;
        world.wait_millis(2.0, 40.0); // time in the queue
        let mut trace = world.new_trace(Some(order_process.to_string()));
        trace.process_in_baggage = true;
        let at = world.endpoint(service, region);
        let mut attributes = messaging_attributes("process", message_id);
        attributes.push(string("messaging.consumer.group.name", service.name()));
        attributes.push(string(
            "messaging.message.header.traceparent",
            format!("00-{}-{}-01", producer.0.to_hex(), producer.1.to_hex()),
        ));
        let consumer = world.open(&mut trace, None, at, "process orders", SpanKind::Consumer, attributes);
        trace.span(consumer).links.push(Link {
            trace_id: producer.0,
            span_id: producer.1,
            trace_state: String::new(),
            attributes: vec![string("messaging.message.id", message_id)],
            dropped_attributes_count: 0,
            flags: 1,
        });
        world.wait_millis(0.1, 1.0);
        let statement = match service {
            Service::Inventory => ("UPDATE", "stock", "UPDATE stock SET reserved = reserved + $2 WHERE sku = $1"),
            _ => ("UPDATE", "orders", "UPDATE orders SET status = 'confirmed' WHERE order_id = $1"),
        };
        world.sql(&mut trace, consumer.span_id, at, statement, (0.5, 5.0));
        world.wait_millis(0.1, 1.0);
        trace.close(consumer, world.now);
        let trace_id = trace.trace_id.to_hex();
        world.finish_trace(trace);
        trace_id
    }
}

fn messaging_attributes(operation: &str, message_id: &str) -> Vec<KeyValue> {
    vec![
        string("messaging.system", "kafka"),
        string("messaging.destination.name", "orders"),
        string("messaging.operation.type", operation),
        string("messaging.message.id", message_id),
    ]
}

/// Inventory's stock lookup over gRPC: an indexed read, or under `slow-inventory` the new
/// unindexed query of the new version.
fn stock_lookup(world: &mut World, trace: &mut TraceBuilder, (parent, caller): (SpanId, Endpoint), region: Region) {
    let inventory = world.endpoint(Service::Inventory, region);
    world.grpc(trace, (parent, caller), inventory, ("shop.InventoryService", "GetStock"), |world, trace, parent| {
        if world.scenario.slow_stock_query() {
            let query = "SELECT sum(delta) FROM stock_movements WHERE sku = $1 AND warehouse_region = $2";
            world.sql(trace, parent, inventory, ("SELECT", "stock_movements", query), (150.0, 900.0));
        } else {
            let query = "SELECT available FROM stock WHERE sku = $1";
            world.sql(trace, parent, inventory, ("SELECT", "stock", query), (0.3, 3.0));
        }
        0
    });
}
