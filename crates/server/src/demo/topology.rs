//! The simulated shop: its seven services, three regions and the resources they report.
//!
//! Every service runs in every region; a request stays in the region it entered through the
//! gateway, except that the store replicates between regions (see [`super::store`]). A
//! resource is `service.name`, `service.version`, `cloud.region` and a per-region
//! `service.instance.id`; one `Arc` per (service, region, version) so that the encoder groups
//! a batch into few `ResourceSpans`.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_model::{KeyValue, Resource, Scope};

/// The three regions, in a fixed order (an index into `[_; 3]` arrays of the store).
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-1"];

/// A region, as an index into [`REGIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(pub usize);

impl Region {
    pub fn name(self) -> &'static str {
        REGIONS[self.0]
    }

    pub fn all() -> impl Iterator<Item = Region> {
        (0..REGIONS.len()).map(Region)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Gateway,
    Cart,
    Catalog,
    Inventory,
    Payment,
    Order,
    Reviews,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Gateway,
        Service::Cart,
        Service::Catalog,
        Service::Inventory,
        Service::Payment,
        Service::Order,
        Service::Reviews,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Cart => "cart",
            Service::Catalog => "catalog",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
            Service::Order => "order",
            Service::Reviews => "reviews",
        }
    }

    /// The version deployed before any scenario changes it.
    pub fn base_version(self) -> &'static str {
        match self {
            Service::Gateway => "2.3.0",
            Service::Cart => "1.8.1",
            Service::Catalog => "3.0.4",
            Service::Inventory => "1.4.2",
            Service::Payment => "5.1.0",
            Service::Order => "2.0.7",
            Service::Reviews => "0.9.3",
        }
    }
}

/// The version of inventory that the slow-inventory scenario deploys.
pub const SLOW_INVENTORY_VERSION: &str = "1.5.0";

/// One place a span runs: a service in a region, at a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub service: Service,
    pub region: Region,
    pub version: &'static str,
}

/// The resources handed out so far, one `Arc` each.
#[derive(Default)]
pub struct Resources {
    by_endpoint: HashMap<Endpoint, Arc<Resource>>,
}

impl Resources {
    pub fn get(&mut self, endpoint: Endpoint) -> Arc<Resource> {
        self.by_endpoint
            .entry(endpoint)
            .or_insert_with(|| {
                Arc::new(Resource {
                    attributes: vec![
                        KeyValue::string("service.name", endpoint.service.name()),
                        KeyValue::string("service.version", endpoint.version),
                        KeyValue::string("service.namespace", "shop"),
                        KeyValue::string(
                            "service.instance.id",
                            format!("{}-{}-0", endpoint.service.name(), endpoint.region.name()),
                        ),
                        KeyValue::string("cloud.provider", "aws"),
                        KeyValue::string("cloud.region", endpoint.region.name()),
                        KeyValue::string("deployment.environment.name", "demo"),
                    ],
                    dropped_attributes_count: 0,
                })
            })
            .clone()
    }
}

/// The instrumentation scope of every demo span.
pub fn scope() -> Arc<Scope> {
    Arc::new(Scope {
        name: "sextant-demo".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    })
}
