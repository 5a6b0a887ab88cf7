//! `Graph<T>`: the tape.
//!
//! An arena of nodes behind a `RefCell`, in recording order. Each node holds its output
//! value, the ids of its inputs, its op (which knows the backward rule), whether it leads to
//! a leaf that wants a gradient, and the source location where it was recorded. The
//! recording order is already a topological order, so a backward pass is one reverse sweep
//! over the arena (see [`crate::backward`]): no hashing, no sorting, no recursion.
//!
//! Handles ([`Var`]) are ids, never references into the arena, and no `RefCell` borrow is
//! held across an op call: a push that grows the arena cannot invalidate anything.

use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::panic::Location as PanicLocation;
use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

use crate::error::Location;
use crate::ops::conv::ConvOp;
use crate::ops::index::IndexOp;
use crate::ops::movement::MovementOp;
use crate::ops::reduce::ReduceOp;
use crate::ops::Op;
use crate::params::{ParamKey, ParamStore};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(1);

/// One recorded operation.
///
/// [`Graph::reset`] drops nodes field by field, by hand: a new field that owns memory must be
/// dropped there too.
pub(crate) struct Node<T: Float> {
    pub(crate) value: Tensor<T>,
    pub(crate) op: Op<T>,
    pub(crate) inputs: SmallVec<[u32; 3]>,
    /// Whether some leaf that wants a gradient is reachable through the inputs.
    pub(crate) requires_grad: bool,
    /// Whether the backward pass keeps this node's gradient (leaves always do; an
    /// intermediate after [`Var::retain_grad`]).
    pub(crate) retain: bool,
    pub(crate) location: Location,
}

/// The tape of one forward pass: records every op applied to its [`Var`]s so that
/// [`Var::backward`] can differentiate them.
///
/// Build one per forward pass (or [`Graph::reset`] one and reuse its memory).
///
/// ```
/// use tapegrad_core::{Graph, Tensor};
/// let g = Graph::<f64>::new();
/// let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]));
/// let y = (x * x).sum() + x.tanh().mean();
/// let grads = y.backward();
/// let dx = grads.wrt(x);
/// let want: Vec<f64> = [1.0f64, 2.0, 3.0]
///     .iter()
///     .map(|v| 2.0 * v + (1.0 - v.tanh().powi(2)) / 3.0)
///     .collect();
/// for (a, b) in dx.as_slice().iter().zip(&want) {
///     assert!((a - b).abs() < 1e-12);
/// }
/// ```
///
/// A `Var` borrows its graph, so it cannot outlive it:
///
/// ```compile_fail
/// use tapegrad_core::{Graph, Tensor};
/// let v = {
///     let g = Graph::<f64>::new();
///     g.leaf(Tensor::scalar(1.0))
/// }; // error: `g` does not live long enough
/// ```
pub struct Graph<T: Float> {
    id: u64,
    nodes: RefCell<Vec<Node<T>>>,
    /// The backward pass's per-node gradient slots, kept between passes so a training
    /// loop does not reallocate them.
    grad_slots: Cell<Vec<Option<Tensor<T>>>>,
    grad_enabled: Cell<bool>,
    anomaly: Cell<bool>,
    /// While a recorded backward pass runs the rule of a node, that node: the ops the rule
    /// records take its location (the user's line), and anomalies in them name it.
    backward_of: Cell<Option<u32>>,
    /// How many nodes the graph held at its last first-order backward pass (0: none), and
    /// whether the warning about a missing `reset` was given (debug builds check).
    last_backward_len: Cell<usize>,
    warned_no_reset: Cell<bool>,
    /// The boxes of the boxed op payloads of earlier passes, reused by the next one so a
    /// reset graph records without allocating.
    spare: RefCell<Spare>,
}

// The boxes themselves are what is kept: each is handed back to a node as it is.
#[allow(clippy::vec_box)]
#[derive(Default)]
pub(crate) struct Spare {
    movement: Vec<Box<MovementOp>>,
    index: Vec<Box<IndexOp>>,
    reduce: Vec<Box<ReduceOp>>,
    conv: Vec<Box<ConvOp>>,
}

/// An op payload the graph keeps boxed, with its own list of spare boxes.
#[allow(clippy::vec_box)]
pub(crate) trait Pooled: Sized {
    /// This payload's spare boxes.
    fn spares(spare: &mut Spare) -> &mut Vec<Box<Self>>;
}

macro_rules! pooled {
    ($($ty:ty => $field:ident),*) => {
        $(impl Pooled for $ty {
            fn spares(spare: &mut Spare) -> &mut Vec<Box<Self>> {
                &mut spare.$field
            }
        })*
    };
}
pooled!(MovementOp => movement, IndexOp => index, ReduceOp => reduce, ConvOp => conv);

impl<T: Float> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Graph<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `nodes` ops before it reallocates.
    pub fn with_capacity(nodes: usize) -> Self {
        Graph {
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            nodes: RefCell::new(Vec::with_capacity(nodes)),
            grad_slots: Cell::new(Vec::new()),
            grad_enabled: Cell::new(true),
            anomaly: Cell::new(false),
            backward_of: Cell::new(None),
            last_backward_len: Cell::new(0),
            warned_no_reset: Cell::new(false),
            spare: RefCell::new(Spare::default()),
        }
    }

    /// A unique id of this graph (distinct for every graph created in the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A leaf that requires a gradient (an input you differentiate with respect to).
    #[track_caller]
    pub fn leaf(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf(value, Op::Leaf, true)
    }

    /// A value with no gradient (data, labels, fixed coefficients).
    #[track_caller]
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf(value, Op::Constant, false)
    }

    /// A 0-d constant.
    #[track_caller]
    pub fn scalar(&self, value: T) -> Var<'_, T> {
        self.constant(Tensor::scalar(value))
    }

    /// Puts a parameter of `store` on the tape as a leaf. The value is shared, not copied.
    /// The leaf requires a gradient unless the parameter is frozen or a buffer; its gradient
    /// is found by key in the [`crate::Gradients`] of a backward pass.
    ///
    /// # Panics
    /// If `key` is not in `store`.
    #[track_caller]
    pub fn param(&self, store: &ParamStore<T>, key: ParamKey) -> Var<'_, T> {
        crate::error::ok(self.try_param(store, key))
    }

    /// Puts a parameter of `store` on the tape (see [`Graph::param`]).
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if `key` is not in `store` (removed, or another store's).
    #[track_caller]
    pub fn try_param(&self, store: &ParamStore<T>, key: ParamKey) -> crate::Result<Var<'_, T>> {
        let p = store.try_get(key)?;
        if cfg!(debug_assertions) && self.last_backward_len.get() > 0 {
            self.warn_if_not_reset(key);
        }
        Ok(self.push_leaf(p.value.clone(), Op::Param(key), p.requires_grad()))
    }

    /// Notes that a first-order backward pass ran (for the missing-`reset` warning).
    pub(crate) fn backward_ran(&self) {
        if cfg!(debug_assertions) {
            self.last_backward_len.set(self.len());
        }
    }

    /// Debug builds: a parameter put on the tape again after a backward pass that already
    /// saw it is the loop that forgot `reset()` — the tape, and every step's time, grow
    /// without bound (2,000 such steps held 30,015 nodes and 265 MB). Says so once per graph.
    #[cold]
    #[track_caller]
    fn warn_if_not_reset(&self, key: ParamKey) {
        if self.warned_no_reset.get() {
            return;
        }
        let upto = self.last_backward_len.get();
        let again = self.nodes.borrow()[..upto]
            .iter()
            .any(|n| matches!(n.op, Op::Param(k) if k == key));
        if again {
            self.warned_no_reset.set(true);
            eprintln!(
                "tapegrad: a parameter is put on graph {} again after a backward pass that already used it, at {}: \
                 the tape keeps every step and grows without bound (it holds {} nodes). \
                 Call graph.reset() between steps, or build a new Graph per step.",
                self.id,
                PanicLocation::caller(),
                self.len()
            );
        }
    }

    /// Whether the missing-`reset` warning was given (debug builds; for tests).
    #[doc(hidden)]
    pub fn warned_no_reset(&self) -> bool {
        self.warned_no_reset.get()
    }

    /// The number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every recorded node but keeps the memory, so the next forward pass does not
    /// reallocate the arena. Needs `&mut self`: no [`Var`] of this graph can be alive.
    pub fn reset(&mut self) {
        self.last_backward_len.set(0);
        let spare = self.spare.get_mut();
        let nodes = self.nodes.get_mut();
        let len = nodes.len();
        // One pass that drops only what owns memory (most nodes of a scalar chain own
        // nothing; `clear` would call the generic drop of every field of every node). The
        // length goes first, so a panicking drop leaks the rest instead of dropping twice.
        // SAFETY: each node in `0..len` is initialised and visited once; after `set_len(0)`
        // nothing else reads or drops them.
        unsafe {
            nodes.set_len(0);
            let base = nodes.as_mut_ptr();
            for k in 0..len {
                let node = &mut *base.add(k);
                match &node.op {
                    Op::Leaf
                    | Op::Constant
                    | Op::Param(_)
                    | Op::Unary(_)
                    | Op::Binary(_)
                    | Op::Matmul(_)
                    | Op::Fused(_) => {}
                    Op::Movement(_)
                    | Op::Index(_)
                    | Op::Reduce(_)
                    | Op::Conv(_)
                    | Op::Custom(_) => match std::ptr::read(&node.op) {
                        Op::Movement(b) => spare.movement.push(b),
                        Op::Index(b) => spare.index.push(b),
                        Op::Reduce(b) => spare.reduce.push(b),
                        Op::Conv(b) => spare.conv.push(b),
                        other => drop(other),
                    },
                }
                if node.value.owns_memory() {
                    std::ptr::drop_in_place(&mut node.value);
                }
                if node.inputs.spilled() {
                    std::ptr::drop_in_place(&mut node.inputs);
                }
            }
        }
    }

    /// `op` in a box, reusing one from an earlier pass if there is one.
    pub(crate) fn boxed<P: Pooled>(&self, op: P) -> Box<P> {
        match P::spares(&mut self.spare.borrow_mut()).pop() {
            Some(mut b) => {
                *b = op;
                b
            }
            None => Box::new(op),
        }
    }

    /// Runs `f` with gradient recording switched off: ops inside still compute values, but
    /// their results are constants (as in `torch.no_grad()`).
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let before = self.grad_enabled.replace(false);
        let r = f();
        self.grad_enabled.set(before);
        r
    }

    /// Whether ops currently record gradients (false inside [`Graph::no_grad`]).
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled.get()
    }

    /// Switches anomaly detection on or off (off by default).
    ///
    /// When on, the first NaN or infinity in a forward value panics at the line of the op
    /// that produced it, and the first one in a gradient panics at the `backward` call with
    /// the name of the op whose backward rule produced it and the line where that op was
    /// recorded. It costs one pass over every value, so it is for debugging.
    pub fn set_anomaly_detection(&self, on: bool) {
        self.anomaly.set(on);
    }

    /// Whether anomaly detection is on.
    pub fn anomaly_detection(&self) -> bool {
        self.anomaly.get()
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Vec<Node<T>>> {
        self.nodes.borrow()
    }

    /// Runs `f`, a node's backward rule in a recorded pass: what it records is attributed to
    /// node `id` (its location, and the anomaly reports).
    pub(crate) fn in_backward_of<R>(&self, id: u32, f: impl FnOnce() -> R) -> R {
        /// Restores the attribution even when the rule panics (an anomaly caught by a test).
        struct Restore<'a>(&'a Cell<Option<u32>>, Option<u32>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _restore = Restore(&self.backward_of, self.backward_of.replace(Some(id)));
        let first = self.len();
        let r = f();
        // The nodes the rule recorded take the location of the node it differentiates (the
        // user's line), set here rather than at every recording so that ordinary ops pay
        // nothing for it.
        let mut nodes = self.nodes.borrow_mut();
        let at = nodes[id as usize].location;
        for n in &mut nodes[first..] {
            n.location = at;
        }
        r
    }

    /// Marks a node so that backward passes keep its gradient.
    pub(crate) fn set_retain(&self, id: u32) {
        self.nodes.borrow_mut()[id as usize].retain = true;
    }

    /// Takes the gradient slots (empty, with whatever capacity the last pass left).
    pub(crate) fn take_grad_slots(&self) -> Vec<Option<Tensor<T>>> {
        self.grad_slots.take()
    }

    /// Returns the gradient slots for the next pass; they must be empty (all `None`).
    pub(crate) fn return_grad_slots(&self, mut slots: Vec<Option<Tensor<T>>>) {
        slots.clear();
        self.grad_slots.set(slots);
    }

    #[track_caller]
    fn push_leaf(&self, value: Tensor<T>, op: Op<T>, requires_grad: bool) -> Var<'_, T> {
        let requires_grad = requires_grad && self.grad_enabled.get();
        self.push_node(Node {
            value,
            op,
            inputs: SmallVec::new(),
            retain: requires_grad,
            requires_grad,
            location: PanicLocation::caller(),
        })
    }

    /// Records an op's output. The node requires a gradient when recording is on and one
    /// of its inputs does.
    ///
    /// Inlined into every op: built in place, the node goes straight into the arena instead
    /// of through a copy on the stack (which costs a store-forwarding stall per op).
    #[track_caller]
    #[inline(always)]
    pub(crate) fn push(&self, value: Tensor<T>, op: Op<T>, inputs: &[u32]) -> Var<'_, T> {
        if self.anomaly.get() {
            check_anomaly(self, &value, &op);
        }
        let location = PanicLocation::caller();
        let mut nodes = self.nodes.borrow_mut();
        let requires_grad =
            self.grad_enabled.get() && inputs.iter().any(|&i| nodes[i as usize].requires_grad);
        let id = node_id(nodes.len());
        nodes.push(Node {
            value,
            op,
            inputs: SmallVec::from_slice(inputs),
            requires_grad,
            retain: false,
            location,
        });
        Var::new(self, id)
    }

    /// The fast path of a unary op on a one-element value (scalar chains, losses): computes
    /// it and writes the node straight into the arena, next to its input, without building
    /// the tensor and the node on the stack first. `None` (nothing recorded) when the input
    /// is not one element or anomaly mode is on; the caller then takes the general path.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn push_one_element_unary(
        &self,
        input: u32,
        op: crate::ops::unary::Unary<T>,
    ) -> Option<Var<'_, T>> {
        if self.anomaly.get() {
            return None;
        }
        let location = PanicLocation::caller();
        let mut nodes = self.nodes.borrow_mut();
        let x = &nodes[input as usize];
        let v = x.value.single()?;
        let requires_grad = self.grad_enabled.get() && x.requires_grad && op.is_differentiable();
        let y = op.f_as_kernel(v);
        let id = node_id(nodes.len());
        nodes.reserve(1);
        let base = nodes.as_mut_ptr();
        // SAFETY: `reserve(1)` leaves room for slot `id`; `input < id` is initialised. Every
        // field of the new node is written before `set_len` makes it visible.
        unsafe {
            let slot = base.add(id as usize);
            Tensor::write_one_like(
                std::ptr::addr_of_mut!((*slot).value),
                &(*base.add(input as usize)).value,
                y,
            );
            // The tag first, then the payload copied in place: `Op::Unary(op)` built whole
            // goes through an unaligned stack temporary and its read-back stalls.
            let op_slot = std::ptr::addr_of_mut!((*slot).op);
            op_slot.write(Op::Unary(crate::ops::unary::Unary::Neg));
            if let Op::Unary(u) = &mut *op_slot {
                *u = op;
            }
            let inputs = if op.is_differentiable() {
                SmallVec::from_buf_and_len([input, 0, 0], 1)
            } else {
                SmallVec::new()
            };
            std::ptr::addr_of_mut!((*slot).inputs).write(inputs);
            std::ptr::addr_of_mut!((*slot).requires_grad).write(requires_grad);
            std::ptr::addr_of_mut!((*slot).retain).write(false);
            std::ptr::addr_of_mut!((*slot).location).write(location);
            nodes.set_len(id as usize + 1);
        }
        Some(Var::new(self, id))
    }

    fn push_node(&self, node: Node<T>) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        let id = node_id(nodes.len());
        nodes.push(node);
        Var::new(self, id)
    }
}

/// The id of the node recorded at position `len` of the arena.
///
/// # Panics
/// Past 2³² − 1 nodes (ids are `u32`).
#[inline(always)]
fn node_id(len: usize) -> u32 {
    assert!(
        len < u32::MAX as usize,
        "a graph holds at most 2^32 - 1 nodes"
    );
    len as u32
}

/// Anomaly mode: panics (at the caller's line) if `value` holds NaN or ±∞, naming the op
/// that produced it — and, for an op recorded by a backward rule, the op whose backward it
/// is and where that op was recorded (the user's line).
#[cold]
#[inline(never)]
#[track_caller]
fn check_anomaly<T: Float>(graph: &Graph<T>, value: &Tensor<T>, op: &Op<T>) {
    if let Some((at, v)) = value.first_non_finite() {
        let at = crate::tensor::unravel(at, value.dims());
        if let Some(i) = graph.backward_of.get() {
            let nodes = graph.nodes();
            let n = &nodes[i as usize];
            panic!(
                "anomaly detected in the recorded backward of `{}` (recorded at {}): its op `{}` produced {v} at element {:?} of a value of shape {:?}",
                n.op.name(),
                n.location,
                op.name(),
                at.as_slice(),
                value.dims(),
            );
        }
        panic!(
            "anomaly detected: op `{}` produced {v} at element {:?} of its output of shape {:?}, at {}",
            op.name(),
            at.as_slice(),
            value.dims(),
            PanicLocation::caller()
        );
    }
}

impl<T: Float> fmt::Display for Graph<T> {
    /// The tape, one node a line: `%3 = matmul(%1, %2) -> [2, 4]  grad  at src/main.rs:9:13`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes().iter().enumerate() {
            let args: Vec<String> = n.inputs.iter().map(|j| format!("%{j}")).collect();
            writeln!(
                f,
                "%{i} = {}({}) -> {:?}{}  at {}",
                n.op.name(),
                args.join(", "),
                n.value.dims(),
                if n.requires_grad { "  grad" } else { "" },
                n.location
            )?;
        }
        Ok(())
    }
}

impl<T: Float> fmt::Debug for Graph<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph {{ id: {}, nodes: {} }}", self.id, self.len())
    }
}
