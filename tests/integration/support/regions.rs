//! One `moto_server` per region, so that a test can stop a region, start it again (moto
//! comes back empty: a region that lost everything), or make it hang (a listener on its
//! port that accepts connections and never answers). Sessions and mounts reach each
//! region through `STARTIFACT_ENDPOINTS`.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_config::Region;
use startifact::storage::{Backend, RegionStore};

use super::moto::{free_port, spawn, wait_until_up};
use super::world::{test_sdk_config, test_storage_options, World, WorldOptions, REGIONS};

/// What a region's port is doing.
enum Serving {
    Moto(Child),
    /// Held for its drop, which closes the listener.
    Hung {
        _listener: Hang,
    },
    Nothing,
}

/// A listener that accepts every connection and never answers.
struct Hang {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hang {
    fn start(port: u16) -> Hang {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the region's port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Hang {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct RegionServer {
    port: u16,
    serving: Mutex<Serving>,
}

impl RegionServer {
    fn set(&self, next: Serving) {
        let mut serving = self.serving.lock().unwrap();
        if let Serving::Moto(child) = &mut *serving {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The previous state (a listener, a dead server) is dropped before the next binds.
        *serving = Serving::Nothing;
        *serving = next;
    }
}

/// A moto server for each of `REGIONS`.
pub struct RegionServers {
    servers: BTreeMap<String, RegionServer>,
    /// Held for the test's life: see `STARTING`.
    _slot: Option<tokio::sync::SemaphorePermit<'static>>,
}

/// Three Python servers per test, started while the rest of the suite runs, answer
/// their first requests slowly enough to pass the setup's timeouts: two such worlds at
/// a time.
static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl RegionServers {
    /// Starts one server per region (from the calling thread: they die with it).
    pub fn start() -> RegionServers {
        let servers: BTreeMap<String, RegionServer> = REGIONS
            .iter()
            .map(|region| {
                let port = free_port();
                let child = spawn(port);
                let server = RegionServer {
                    port,
                    serving: Mutex::new(Serving::Moto(child)),
                };
                (region.to_string(), server)
            })
            .collect();
        for server in servers.values() {
            wait_until_up(server.port);
        }
        RegionServers {
            servers,
            _slot: None,
        }
    }

    fn server(&self, region: &str) -> &RegionServer {
        self.servers
            .get(region)
            .unwrap_or_else(|| panic!("no server for {region}"))
    }

    pub fn url(&self, region: &str) -> String {
        format!("http://127.0.0.1:{}", self.server(region).port)
    }

    /// Every region's endpoint, as `STARTIFACT_ENDPOINTS` takes them.
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        self.servers
            .keys()
            .map(|region| (region.clone(), self.url(region)))
            .collect()
    }

    /// Stops the region's server: connections to it are refused.
    pub fn stop(&self, region: &str) {
        self.server(region).set(Serving::Nothing);
    }

    /// Starts the region's server again on the same port. moto keeps nothing: the
    /// region comes back empty, without buckets or parameters.
    pub fn start_again(&self, region: &str) {
        let server = self.server(region);
        server.set(Serving::Moto(spawn(server.port)));
        wait_until_up(server.port);
    }

    /// Replaces the region's server by a listener that accepts and never answers.
    pub fn hang(&self, region: &str) {
        let server = self.server(region);
        server.set(Serving::Nothing);
        server.set(Serving::Hung {
            _listener: Hang::start(server.port),
        });
    }

    /// The region's store, reached directly, to look at what it holds.
    pub async fn store(&self, region: &str) -> Arc<dyn RegionStore> {
        let backend = Backend::Aws {
            sdk_config: Box::new(test_sdk_config().await),
            options: test_storage_options(self.endpoints()),
        };
        backend.open_region(region)
    }

    /// Gives `region`'s server the world's bucket and parameters for that region.
    pub async fn provision(&self, world: &World, region: &str) {
        self.provision_bucket(world, region).await;
        let store = self.store(region).await;
        put_parameter(&*store, &world.config_param, &world.configuration.to_json()).await;
    }

    /// Gives `region`'s server the world's bucket and its bucket-name parameter: what a
    /// user creates again in a region that lost everything (repair writes the rest).
    pub async fn provision_bucket(&self, world: &World, region: &str) {
        let sdk_config = test_sdk_config().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .endpoint_url(self.url(region))
            .region(Region::new(region.to_string()))
            .force_path_style(true)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        let mut request = s3.create_bucket().bucket(&world.buckets[region]);
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating the bucket in {region}: {e:?}"));
        let store = self.store(region).await;
        put_parameter(&*store, &world.bucket_param, &world.buckets[region]).await;
    }
}

async fn put_parameter(store: &dyn RegionStore, name: &str, value: &str) {
    // A server just started may miss the first request's timeout.
    let mut tries = 0;
    while let Err(e) = store.put_parameter(name, value).await {
        tries += 1;
        assert!(tries < 3, "{name} in {}: {e:?}", store.region());
    }
}

impl Drop for RegionServers {
    fn drop(&mut self) {
        for server in self.servers.values() {
            server.set(Serving::Nothing);
        }
    }
}

/// A world whose three regions are three moto servers of its own.
pub async fn world_per_region() -> (World, RegionServers) {
    let slot = STARTING
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let mut servers = RegionServers::start();
    servers._slot = Some(slot);
    let first = servers.url(REGIONS[0]);
    let mut world = World::moto_at(&first, WorldOptions::default()).await;
    for region in &REGIONS[1..] {
        servers.provision(&world, region).await;
    }
    world.region_endpoints = servers.endpoints();
    (world, servers)
}
