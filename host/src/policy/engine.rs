//! The wasmtime engine every instance of a policy runs in, and the bounds
//! of each call into the guest: a time budget (wall time in the guest,
//! enforced through epochs) and a memory cap. Hitting either traps, and a
//! trap is reported by its cause, never retried.

use std::fmt;
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};

use crate::policy::{PolicyError, TrapKind};

/// Per-evaluation bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall time one call into the guest may take (the host answers
    /// questions between calls, outside the guest). The default is far
    /// above what even a subject with huge labels takes, leaving room for a
    /// thread descheduled on an overloaded machine, and still stops an
    /// endless loop soon (Kubewarden's policy time-out is also epoch-based
    /// and of the same order).
    pub time_budget: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Questions one verdict may ask in all (docs/reference.md §3); the rules ask one,
    /// two when a repository moved.
    pub max_questions: usize,
    /// Rounds of questions one verdict may ask (docs/reference.md §3).
    pub max_rounds: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_budget: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            max_questions: 4,
            max_rounds: 2,
        }
    }
}

/// Instances that may be alive at once. An instance lives only while the
/// guest computes and is never held while an answer is awaited, so this
/// bounds runtime threads evaluating at once, not requests.
const POOL_SLOTS: u32 = 128;

/// How often the engine's epoch advances: the granularity of the time
/// budget. Only a guest running for a whole tick ever hears of it.
const TICK: Duration = Duration::from_millis(10);

/// An engine for `limits`, its epoch ticking. Pooled, it is sized for many
/// verdicts, many at once; the pool reserves address space up front, and
/// where that is refused (a tight `ulimit -v`) instances are mapped on
/// demand instead.
pub(super) fn engine(limits: &Limits, pooled: bool) -> Result<Engine, String> {
    let engine = Engine::new(&engine_config(limits, pooled))
        .or_else(|e| {
            tracing::warn!("pooling allocator unavailable, mapping instances on demand: {e:#}");
            Engine::new(&engine_config(limits, false))
        })
        .map_err(|e| format!("{e:#}"))?;
    start_ticking(&engine).map_err(|e| format!("starting its clock thread: {e}"))?;
    Ok(engine)
}

fn engine_config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    // Traps are reported by their cause; a backtrace of an optimised,
    // stripped guest helps nobody and costs time on every trap.
    config.wasm_backtrace_max_frames(None);
    if pooling {
        // A fresh instance per verdict: with the pooling allocator and the
        // start of each memory kept resident, instantiating reuses a slot instead of
        // mapping and unmapping memory each time (the kernel's page-table
        // work dominated a fresh verdict without it).
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(4 * POOL_SLOTS)
            .total_memories(POOL_SLOTS)
            .total_tables(4 * POOL_SLOTS)
            .max_memory_size(limits.memory_bytes)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances `engine`'s epoch every [`TICK`] until the engine is dropped.
/// Epoch checks are a load and a compare at function entries and loop
/// heads; fuel, counted every basic block, cost more per verdict.
fn start_ticking(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("provgate-epoch".into())
        // It only sleeps and adds; the default stack is mapped for nothing.
        .stack_size(64 << 10)
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
}

/// The store's data: what one instance may touch.
pub(super) struct Sandbox {
    limiter: Limiter,
    clock: Clock,
}

impl Sandbox {
    /// The time the current call into the guest has taken.
    pub(super) fn guest_time(&self) -> Duration {
        self.clock.started.elapsed()
    }
}

/// The time the current call into the guest may take.
struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    fn start(budget: Duration) -> Clock {
        Clock {
            started: Instant::now(),
            budget,
        }
    }
}

/// wasmtime's store limits, remembering a refused memory growth so that
/// the trap that follows can be told apart from others: wasmtime reports
/// it as a plain error, not as a trap code.
struct Limiter {
    limits: StoreLimits,
    memory_refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let grown = self.limits.memory_growing(current, desired, maximum);
        self.memory_refused |= !matches!(grown, Ok(true));
        grown
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The trap raised when an evaluation overruns its time budget.
#[derive(Debug)]
struct OutOfTime(Duration);

impl fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "it ran past its time budget ({} ms in the guest for one call)",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for OutOfTime {}

/// A fresh store with the limits of one verdict, its clock started.
pub(super) fn new_store(engine: &Engine, limits: &Limits) -> Store<Sandbox> {
    let sandbox = Sandbox {
        limiter: Limiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .instances(4)
                .memories(4)
                .tables(4)
                .table_elements(100_000)
                .build(),
            memory_refused: false,
        },
        clock: Clock::start(limits.time_budget),
    };
    let mut store = Store::new(engine, sandbox);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        let clock = &store.data().clock;
        if clock.started.elapsed() > clock.budget {
            return Err(OutOfTime(clock.budget).into());
        }
        Ok(UpdateDeadline::Continue(1))
    });
    store
}

/// Starts the clock of another call into the guest of `store`.
pub(super) fn restart_clock(store: &mut Store<Sandbox>, budget: Duration) {
    store.data_mut().clock = Clock::start(budget);
    store.set_epoch_deadline(1);
}

/// A trap or limit hit in `store`, in words an operator can act on.
pub(super) fn trap(err: &wasmtime::Error, store: &Store<Sandbox>) -> PolicyError {
    let (kind, message) = if let Some(out_of_time) = err.downcast_ref::<OutOfTime>() {
        (TrapKind::TimeBudget, out_of_time.to_string())
    } else {
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => (TrapKind::Stack, "it exhausted its stack".to_string()),
            Some(wasmtime::Trap::UnreachableCodeReached) => (
                TrapKind::Unreachable,
                "it trapped on `unreachable` (a panic inside the guest)".to_string(),
            ),
            Some(trap) => (TrapKind::Other, format!("it trapped: {trap}")),
            None if store.data().limiter.memory_refused => (TrapKind::Memory, format!("{err:#}")),
            None => (TrapKind::Other, format!("{err:#}")),
        }
    };
    PolicyError::Trap { kind, message }
}

/// Names the export a trap happened in.
pub(super) fn during(call: &str, error: PolicyError) -> PolicyError {
    match error {
        PolicyError::Trap { kind, message } => PolicyError::Trap {
            kind,
            message: format!("{message} (in its `{call}` call)"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limits: &Limits) -> Store<Sandbox> {
        let engine = Engine::new(&engine_config(limits, false)).expect("engine");
        new_store(&engine, limits)
    }

    fn kind_and_message(error: PolicyError) -> (TrapKind, String) {
        match error {
            PolicyError::Trap { kind, message } => (kind, message),
            other => panic!("expected a trap, got {other:?}"),
        }
    }

    #[test]
    fn a_refused_memory_growth_is_a_memory_trap_in_wasmtimes_words() {
        let limits = Limits {
            memory_bytes: 1 << 16,
            ..Limits::default()
        };
        let mut store = store(&limits);
        let refused = store.data_mut().limiter.memory_growing(0, 2 << 16, None);
        let error = refused.expect_err("growth past the cap traps");
        assert_eq!(
            kind_and_message(trap(&error, &store)),
            (TrapKind::Memory, format!("{error:#}"))
        );
        assert!(format!("{error:#}").contains("memory"), "{error:#}");
    }

    #[test]
    fn traps_are_told_apart_by_kind_and_keep_their_words() {
        let store = store(&Limits::default());
        let cases: [(wasmtime::Error, TrapKind, String); 5] = [
            (
                OutOfTime(Duration::from_secs(1)).into(),
                TrapKind::TimeBudget,
                "it ran past its time budget (1000 ms in the guest for one call)".into(),
            ),
            (
                wasmtime::Trap::StackOverflow.into(),
                TrapKind::Stack,
                "it exhausted its stack".into(),
            ),
            (
                wasmtime::Trap::UnreachableCodeReached.into(),
                TrapKind::Unreachable,
                "it trapped on `unreachable` (a panic inside the guest)".into(),
            ),
            (
                wasmtime::Trap::MemoryOutOfBounds.into(),
                TrapKind::Other,
                format!("it trapped: {}", wasmtime::Trap::MemoryOutOfBounds),
            ),
            (
                wasmtime::Error::msg("instance limit reached"),
                TrapKind::Other,
                "instance limit reached".into(),
            ),
        ];
        for (error, kind, message) in cases {
            assert_eq!(kind_and_message(trap(&error, &store)), (kind, message.clone()));
            assert_eq!(
                kind_and_message(during("resume", trap(&error, &store))),
                (kind, format!("{message} (in its `resume` call)"))
            );
        }
        let stopped = during("evaluate", trap(&wasmtime::Trap::StackOverflow.into(), &store));
        assert_eq!(
            stopped.to_string(),
            "the policy was stopped: it exhausted its stack (in its `evaluate` call)"
        );
    }
}
