//! RTP observers: mediasoup's AudioLevelObserver and ActiveSpeakerObserver.
//!
//! An observer lives on its router's home shard. Adding a producer that lives on another shard
//! of a spanning router first makes sure the home shard holds its mirror (as a consumer there
//! would), so the observer sees every producer of the room wherever it was placed.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::Command;
use super::consumer::ensure_mirror;
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::EngineInner;
use super::router::Router;
use crate::core::{ObjectId, ObserverSpec};
use crate::error::{Error, Result};

/// mediasoup's `AudioLevelObserverOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AudioLevelObserverOptions {
    /// Most entries in a `volumes` event (default 1).
    pub max_entries: u32,
    /// Lowest average volume, in dBov (-127..=0), a producer needs to be in `volumes` (default -80).
    pub threshold: i32,
    /// Milliseconds between two `volumes` (default 1000; kept within 250..=5000).
    pub interval: u32,
    pub app_data: Value,
}

impl Default for AudioLevelObserverOptions {
    fn default() -> Self {
        AudioLevelObserverOptions {
            max_entries: 1,
            threshold: -80,
            interval: 1000,
            app_data: Value::Object(Default::default()),
        }
    }
}

/// mediasoup's `ActiveSpeakerObserverOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActiveSpeakerObserverOptions {
    /// Milliseconds between two decisions (default 300; kept within 100..=5000).
    pub interval: u32,
    pub app_data: Value,
}

impl Default for ActiveSpeakerObserverOptions {
    fn default() -> Self {
        ActiveSpeakerObserverOptions { interval: 300, app_data: Value::Object(Default::default()) }
    }
}

/// One entry of an AudioLevelObserver's `volumes` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioLevelObserverVolume {
    pub producer_id: String,
    /// Average volume over the interval, in dBov (0 loudest, -127 silence).
    pub volume: i8,
}

/// `'audiolevel' | 'activespeaker'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpObserverType {
    AudioLevel,
    ActiveSpeaker,
}

pub(crate) struct ObserverInner {
    engine: Arc<EngineInner>,
    router: Router,
    id: String,
    oid: ObjectId,
    r#type: RtpObserverType,
    shared: Arc<ObjectShared>,
    app_data: Value,
}

/// mediasoup's RtpObserver: what both observers share. It closes with `routerclose` when its
/// router closes.
#[derive(Clone)]
pub struct RtpObserver {
    inner: Arc<ObserverInner>,
}

impl RtpObserver {
    async fn create(router: &Router, r#type: RtpObserverType, spec: ObserverSpec, app_data: Value) -> Result<Self> {
        router.check_open()?;
        let engine = router.inner.engine.clone();
        let oid = engine.alloc_id();
        let id = uuid::Uuid::new_v4().to_string();
        engine.request(router.shard(), Command::CreateObserver { router: router.inner.oid, id: oid, spec }).await?;
        let shared = ObjectShared::new(oid, id.clone(), false);
        engine.registry.insert(&shared);
        Ok(RtpObserver {
            inner: Arc::new(ObserverInner { engine, router: router.clone(), id, oid, r#type, shared, app_data }),
        })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn r#type(&self) -> RtpObserverType {
        self.inner.r#type
    }

    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    pub fn paused(&self) -> bool {
        self.inner.shared.paused.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("RtpObserver")
    }

    fn shard(&self) -> usize {
        self.inner.router.shard()
    }

    /// The router's producer `producer_id`, as mediasoup looks it up (an `Error` when unknown).
    fn producer(&self, producer_id: &str) -> Result<Arc<super::producer::ProducerEntry>> {
        let producers = self.inner.engine.producers.lock().expect("producers lock");
        producers
            .get(&(self.inner.router.inner.oid, producer_id.to_owned()))
            .cloned()
            .ok_or_else(|| Error::other(format!("Producer with id \"{producer_id}\" not found")))
    }

    /// mediasoup's `rtpObserver.addProducer({ producerId })`: an audio producer of the router,
    /// on whichever shard it lives.
    pub async fn add_producer(&self, producer_id: &str) -> Result<()> {
        self.check_open()?;
        let router = self.inner.router.inner.oid;
        let producer = self.producer(producer_id)?;
        if producer.kind != crate::rtp_parameters::MediaKind::Audio {
            return Err(Error::type_error("not an audio Producer"));
        }
        if producer.shard != self.shard() {
            ensure_mirror(&self.inner.engine, &producer, router, self.shard()).await?;
        }
        let cmd = Command::ObserverAddProducer { id: self.inner.oid, producer: producer.oid };
        self.inner.engine.request(self.shard(), cmd).await?;
        self.inner.shared.emit("@addproducer", &EventArg::Text(producer_id));
        Ok(())
    }

    /// mediasoup's `rtpObserver.removeProducer({ producerId })`.
    pub async fn remove_producer(&self, producer_id: &str) -> Result<()> {
        self.check_open()?;
        let producer = self.producer(producer_id)?;
        let cmd = Command::ObserverRemoveProducer { id: self.inner.oid, producer: producer.oid };
        self.inner.engine.request(self.shard(), cmd).await?;
        self.inner.shared.emit("@removeproducer", &EventArg::Text(producer_id));
        Ok(())
    }

    /// mediasoup's `rtpObserver.pause()`: no events until resumed.
    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.shard(), Command::PauseObserver { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(true);
        Ok(())
    }

    /// mediasoup's `rtpObserver.resume()`.
    pub async fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.shard(), Command::ResumeObserver { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(false);
        Ok(())
    }

    /// Close the observer (its producers are not affected).
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.shard(), Command::CloseObserver { id: self.inner.oid });
    }

    /// `rtpObserver.on('routerclose')`.
    pub fn on_router_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("routerclose", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `pause`.
    pub fn on_pause(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@pause", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `resume`.
    pub fn on_resume(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@resume", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `addproducer`: the producer's id.
    pub fn on_add_producer(&self, f: impl Fn(&str) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@addproducer", text_handler(f))
    }

    /// Observer `removeproducer`: the producer's id.
    pub fn on_remove_producer(&self, f: impl Fn(&str) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@removeproducer", text_handler(f))
    }

    pub fn off(&self, id: HandlerId) {
        self.inner.shared.off(id);
    }
}

fn text_handler(f: impl Fn(&str) + Send + Sync + 'static) -> Box<dyn Fn(&EventArg<'_>) + Send + Sync> {
    Box::new(move |arg: &EventArg<'_>| {
        if let EventArg::Text(s) = arg {
            f(s)
        }
    })
}

/// mediasoup's AudioLevelObserver.
#[derive(Clone)]
pub struct AudioLevelObserver {
    observer: RtpObserver,
}

impl AudioLevelObserver {
    pub(crate) async fn create(router: &Router, options: AudioLevelObserverOptions) -> Result<Self> {
        if options.max_entries == 0 || options.max_entries > u32::from(u16::MAX) {
            return Err(Error::type_error("invalid maxEntries value"));
        }
        if !(-127..=0).contains(&options.threshold) {
            return Err(Error::type_error("invalid threshold value"));
        }
        let spec = ObserverSpec::AudioLevel {
            max_entries: options.max_entries as u16,
            threshold: options.threshold as i8,
            interval: Duration::from_millis(u64::from(options.interval.clamp(250, 5000))),
        };
        let observer = RtpObserver::create(router, RtpObserverType::AudioLevel, spec, options.app_data).await?;
        Ok(AudioLevelObserver { observer })
    }

    /// `audioLevelObserver.on('volumes')`: the loudest producers over the last interval.
    pub fn on_volumes(&self, f: impl Fn(&[AudioLevelObserverVolume]) + Send + Sync + 'static) -> HandlerId {
        self.observer.inner.shared.on(
            "volumes",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::Volumes(v) = arg {
                    f(v)
                }
            }),
        )
    }

    /// `audioLevelObserver.on('silence')`: no producer reached the threshold (told once).
    pub fn on_silence(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.observer.inner.shared.on("silence", Box::new(move |_: &EventArg<'_>| f()))
    }
}

impl Deref for AudioLevelObserver {
    type Target = RtpObserver;
    fn deref(&self) -> &RtpObserver {
        &self.observer
    }
}

/// mediasoup's ActiveSpeakerObserver.
#[derive(Clone)]
pub struct ActiveSpeakerObserver {
    observer: RtpObserver,
}

impl ActiveSpeakerObserver {
    pub(crate) async fn create(router: &Router, options: ActiveSpeakerObserverOptions) -> Result<Self> {
        let spec = ObserverSpec::ActiveSpeaker {
            interval: Duration::from_millis(u64::from(options.interval.clamp(100, 5000))),
        };
        let observer = RtpObserver::create(router, RtpObserverType::ActiveSpeaker, spec, options.app_data).await?;
        Ok(ActiveSpeakerObserver { observer })
    }

    /// `activeSpeakerObserver.on('dominantspeaker')`: the id of the new dominant speaker's producer.
    pub fn on_dominant_speaker(&self, f: impl Fn(&str) + Send + Sync + 'static) -> HandlerId {
        self.observer.inner.shared.on("dominantspeaker", text_handler(f))
    }
}

impl Deref for ActiveSpeakerObserver {
    type Target = RtpObserver;
    fn deref(&self) -> &RtpObserver {
        &self.observer
    }
}
