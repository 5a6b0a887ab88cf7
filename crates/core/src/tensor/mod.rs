//! `Tensor<E>`: an owned n-d array, row-major and contiguous, with copy-on-write storage.
//!
//! Storage is shared: cloning a tensor, putting a parameter on the tape or reshaping costs a
//! reference-count increment, never a copy of the data. A write through
//! [`Tensor::as_mut_slice`] copies the data first only when it is shared (the
//! reference-counted [`crate::memory`] buffer's `make_mut`, which recycles freed buffers
//! through a size-class pool), so an optimizer updates a parameter in place once the tape
//! that read it is gone.
//!
//! Tensors of up to four elements keep their data inline and never touch the allocator:
//! the per-op cost on tiny tensors (scalars, biases of size 1) is then only the arithmetic.
//!
//! Float tensors (`Tensor<f32>`, `Tensor<f64>`) carry the numeric op set; `Tensor<usize>`
//! holds indices and `Tensor<bool>` masks.

mod create;
pub mod display;

use crate::error::{ok, shape_error, Error, Location, Result};
use crate::memory::{AllocError, Buffer};
use crate::shape::{check_numel, checked_numel, IntoShape, Shape};

/// Panics for storage of `len` elements the allocator refused (a copy or a map of a tensor
/// that exists: the machine is out of memory).
#[cold]
#[inline(never)]
#[track_caller]
fn alloc_panic(len: usize, e: AllocError) -> ! {
    panic!("cannot allocate a tensor of {len} elements: {e}")
}

/// The [`Error`] for a tensor of `shape` that could not be allocated.
#[cold]
#[inline(never)]
fn alloc_error<E>(op: &'static str, shape: &[usize], e: AllocError, location: Location) -> Error {
    match e.bytes {
        Some(bytes) => Error::Alloc {
            op,
            shape: Shape::from_slice(shape),
            bytes,
            location,
        },
        // Unreachable after `check_numel`, which refuses such counts first.
        None => match check_numel(op, shape, std::mem::size_of::<E>(), location) {
            Err(e) => e,
            Ok(_) => shape_error(op, &[shape], e.to_string()),
        },
    }
}

/// Checks that a tensor of `shape` with elements of `E` can exist, and when it is large,
/// that the machine can hold it: reserves its memory (see `memory::try_reserve`) so that
/// the op about to make it finds it. For ops whose output size comes from their
/// arguments (broadcasts, pads, products, windows, constructors), called where they
/// validate, so that a size too large is an error of their `try_` form.
///
/// # Errors
/// [`Error::Shape`] if the count overflows or exceeds one allocation; [`Error::Alloc`] if
/// the allocator refuses it.
#[inline]
pub(crate) fn check_output<E: Element>(
    op: &'static str,
    shape: &[usize],
    location: Location,
) -> Result<()> {
    /// Below this, an allocation that fails is the machine running out of memory, not an
    /// argument asking for the impossible, and reserving is not worth its cost.
    const RESERVE_FROM: usize = 1 << 26;
    let n = match checked_numel(shape) {
        Some(n) if n <= RESERVE_FROM / std::mem::size_of::<E>().max(1) => return Ok(()),
        _ => check_numel(op, shape, std::mem::size_of::<E>(), location)?,
    };
    crate::memory::try_reserve::<E>(n).map_err(|e| alloc_error::<E>(op, shape, e, location))
}

/// An element type a tensor can hold: the floats, `usize` indices, `bool` masks and the
/// common integers. Sealed: the list is fixed.
pub trait Element:
    Copy + Default + std::fmt::Debug + PartialEq + Send + Sync + 'static + sealed::Sealed
{
}

pub(crate) mod sealed {
    /// Implemented by the element types only. `ANY_BIT_PATTERN`: every bit pattern of the
    /// type's size is a valid value (true for the numbers, false for `bool`), so a recycled
    /// buffer may be handed out without resetting it.
    pub trait Sealed {
        const ANY_BIT_PATTERN: bool;
    }
}

macro_rules! element {
    ($($t:ty: $pod:expr),*) => {$(
        impl sealed::Sealed for $t {
            const ANY_BIT_PATTERN: bool = $pod;
        }
        impl Element for $t {}
    )*};
}
element!(f32: true, f64: true, bool: false, usize: true, i64: true, i32: true, u32: true, u8: true);

/// Tensors up to this many elements store their data inline.
const INLINE: usize = 4;

/// Copy-on-write storage: inline for tiny tensors, a shared pooled buffer otherwise.
#[derive(Clone)]
enum Storage<E: Element> {
    Inline { len: u8, data: [E; INLINE] },
    Heap(Buffer<E>),
}

impl<E: Element> Storage<E> {
    /// Storage of `len` elements written by `fill`, which must write every one of them
    /// (the slice it gets holds valid but unspecified values).
    #[inline]
    fn try_new_with(len: usize, fill: impl FnOnce(&mut [E])) -> Result<Self, AllocError> {
        if len <= INLINE {
            let mut data = [E::default(); INLINE];
            fill(&mut data[..len]);
            Ok(Storage::Inline {
                len: len as u8,
                data,
            })
        } else {
            Buffer::try_new_with(len, fill).map(Storage::Heap)
        }
    }

    /// Storage of `len` elements written by `fill` (see [`Storage::try_new_with`]), for a
    /// count that exists already (a copy, a map): panics only if the allocator refuses.
    #[track_caller]
    #[inline]
    fn new_with(len: usize, fill: impl FnOnce(&mut [E])) -> Self {
        match Self::try_new_with(len, fill) {
            Ok(s) => s,
            Err(e) => alloc_panic(len, e),
        }
    }

    /// Inline storage of the one element `value`.
    #[inline(always)]
    fn one(value: E) -> Self {
        let mut data = [E::default(); INLINE];
        data[0] = value;
        Storage::Inline { len: 1, data }
    }

    #[track_caller]
    fn from_slice(v: &[E]) -> Self {
        Self::new_with(v.len(), |out| out.copy_from_slice(v))
    }

    /// Storage holding exactly the items of `iter`, which yields `len` of them: inline
    /// (no allocation) for tiny tensors, a pooled buffer otherwise.
    #[track_caller]
    #[inline]
    fn from_iter_exact(len: usize, iter: impl Iterator<Item = E>) -> Self {
        Self::new_with(len, |out| {
            let mut n = 0;
            for (d, v) in out.iter_mut().zip(iter) {
                *d = v;
                n += 1;
            }
            debug_assert_eq!(n, len);
        })
    }

    fn fill_with(value: E) -> impl FnOnce(&mut [E]) {
        move |out| tapegrad_kernels::elementwise::chunked(out, |_, piece| piece.fill(value))
    }

    #[inline]
    fn as_slice(&self) -> &[E] {
        match self {
            Storage::Inline { len, data } => &data[..*len as usize],
            Storage::Heap(v) => v.as_slice(),
        }
    }

    #[inline]
    fn as_mut_slice(&mut self) -> &mut [E] {
        match self {
            Storage::Inline { len, data } => &mut data[..*len as usize],
            Storage::Heap(v) => v.make_mut(),
        }
    }
}

/// An n-d array of `E`, row-major and contiguous, with shared copy-on-write storage.
///
/// ```
/// use tapegrad_core::Tensor;
/// let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
/// assert_eq!(t.dims(), &[2, 3]);
/// assert_eq!(t.get(&[1, 0]), 4.0);
/// let u = t.clone(); // shares the data
/// assert!(u.shares_storage_with(&t));
/// ```
pub struct Tensor<E: Element> {
    shape: Shape,
    storage: Storage<E>,
}

impl<E: Element> Clone for Tensor<E> {
    /// Shares the storage; the shape is copied as plain integers (`SmallVec`'s own `clone`
    /// goes element by element through `Extend`, a tenth of the cost of a scalar op).
    #[inline]
    fn clone(&self) -> Self {
        Tensor {
            shape: copy_shape(&self.shape),
            storage: self.storage.clone(),
        }
    }
}

/// A copy of `shape`. A shape of up to four dimensions lives inside the `SmallVec` and owns
/// no heap memory, so its bytes are copied as they are, in whole words: building it through
/// `from_slice` writes it piecewise on the stack and reads it back whole, which stalls store
/// forwarding on every op of a scalar chain.
#[inline(always)]
pub(crate) fn copy_shape(shape: &Shape) -> Shape {
    if shape.spilled() {
        Shape::from_slice(shape)
    } else {
        // SAFETY: an unspilled SmallVec of `usize` holds its elements inline and nothing on
        // the heap; a bitwise copy is an independent, valid value and dropping either
        // copy frees nothing.
        unsafe { std::ptr::read(shape) }
    }
}

impl<E: Element> Tensor<E> {
    /// A tensor of the given shape over `data` (row-major).
    ///
    /// # Panics
    /// If `data.len()` is not the product of the shape.
    #[track_caller]
    pub fn from_vec(data: Vec<E>, shape: impl IntoShape) -> Self {
        ok(Self::try_from_vec(data, shape))
    }

    /// A tensor of the given shape over `data` (row-major).
    ///
    /// # Errors
    /// [`Error::Shape`] if `data.len()` is not the product of the shape.
    #[track_caller]
    pub fn try_from_vec(data: Vec<E>, shape: impl IntoShape) -> Result<Self> {
        Self::try_from_slice(&data, shape)
    }

    /// A tensor of the given shape with a copy of `data`.
    ///
    /// # Panics
    /// If `data.len()` is not the product of the shape.
    #[track_caller]
    pub fn from_slice(data: &[E], shape: impl IntoShape) -> Self {
        ok(Self::try_from_slice(data, shape))
    }

    /// A tensor of the given shape with a copy of `data`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `data.len()` is not the product of the shape.
    #[track_caller]
    pub fn try_from_slice(data: &[E], shape: impl IntoShape) -> Result<Self> {
        let shape = shape.into_shape();
        let n = check_numel(
            "from_vec",
            &shape,
            std::mem::size_of::<E>(),
            std::panic::Location::caller(),
        )?;
        if n != data.len() {
            return Err(shape_error(
                "from_vec",
                &[&shape],
                format!("the shape holds {n} elements but {} were given", data.len()),
            ));
        }
        Ok(Tensor {
            shape,
            storage: Storage::from_slice(data),
        })
    }

    /// A tensor of the given shape whose elements are written by `fill`.
    ///
    /// The slice `fill` receives holds valid but unspecified values (storage is recycled
    /// without being cleared): `fill` must write every element. This is how kernels write
    /// their results straight into a tensor, without a zeroing pass or a copy.
    ///
    /// ```
    /// use tapegrad_core::Tensor;
    /// let t = Tensor::<f32>::from_writer([2, 3], |out| {
    ///     for (i, v) in out.iter_mut().enumerate() {
    ///         *v = i as f32;
    ///     }
    /// });
    /// assert_eq!(t.get(&[1, 2]), 5.0);
    /// ```
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated (see
    /// [`Tensor::try_from_writer`]).
    #[track_caller]
    #[inline]
    pub fn from_writer(shape: impl IntoShape, fill: impl FnOnce(&mut [E])) -> Self {
        ok(Self::build("from_writer", shape.into_shape(), fill))
    }

    /// A tensor of the given shape whose elements are written by `fill` (see
    /// [`Tensor::from_writer`]); `fill` is not called on an error.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shape's element count overflows `isize` or its bytes exceed
    /// one allocation; [`Error::Alloc`] if the allocator refuses the memory.
    #[track_caller]
    #[inline]
    pub fn try_from_writer(shape: impl IntoShape, fill: impl FnOnce(&mut [E])) -> Result<Self> {
        Self::build("from_writer", shape.into_shape(), fill)
    }

    /// Internal: the one place a tensor's storage is made from a shape: the count is
    /// checked, then the memory is asked for; `op` names the caller in errors.
    #[track_caller]
    #[inline]
    pub(crate) fn build(
        op: &'static str,
        shape: Shape,
        fill: impl FnOnce(&mut [E]),
    ) -> Result<Self> {
        let n = match checked_numel(&shape) {
            Some(n) if n <= (isize::MAX as usize - 64) / std::mem::size_of::<E>().max(1) => n,
            _ => {
                return Err(check_numel(
                    op,
                    &shape,
                    std::mem::size_of::<E>(),
                    std::panic::Location::caller(),
                )
                .expect_err("the count was refused above"))
            }
        };
        match Storage::try_new_with(n, fill) {
            Ok(storage) => Ok(Tensor { shape, storage }),
            Err(e) => Err(alloc_error::<E>(
                op,
                &shape,
                e,
                std::panic::Location::caller(),
            )),
        }
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(value: E) -> Self {
        Tensor {
            shape: Shape::new(),
            storage: Storage::one(value),
        }
    }

    /// A tensor with every element equal to `value`.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated (see
    /// [`Tensor::try_full`]).
    #[track_caller]
    pub fn full(shape: impl IntoShape, value: E) -> Self {
        ok(Self::build(
            "full",
            shape.into_shape(),
            Storage::fill_with(value),
        ))
    }

    /// A tensor with every element equal to `value`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shape's element count overflows or exceeds one allocation;
    /// [`Error::Alloc`] if the allocator refuses the memory.
    #[track_caller]
    pub fn try_full(shape: impl IntoShape, value: E) -> Result<Self> {
        Self::build("full", shape.into_shape(), Storage::fill_with(value))
    }

    /// A tensor whose element at flat (row-major) position `i` is `f(i)`.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated (see
    /// [`Tensor::try_from_fn`]).
    #[track_caller]
    pub fn from_fn(shape: impl IntoShape, f: impl FnMut(usize) -> E) -> Self {
        ok(Self::try_from_fn_as("from_fn", shape.into_shape(), f))
    }

    /// A tensor whose element at flat (row-major) position `i` is `f(i)`.
    ///
    /// # Errors
    /// As [`Tensor::try_full`].
    #[track_caller]
    pub fn try_from_fn(shape: impl IntoShape, f: impl FnMut(usize) -> E) -> Result<Self> {
        Self::try_from_fn_as("from_fn", shape.into_shape(), f)
    }

    #[track_caller]
    fn try_from_fn_as(
        op: &'static str,
        shape: Shape,
        mut f: impl FnMut(usize) -> E,
    ) -> Result<Self> {
        Self::build(op, shape, |out| {
            for (i, v) in out.iter_mut().enumerate() {
                *v = f(i);
            }
        })
    }

    /// The shape, as a [`Shape`] value: the type [`Var::shape`](crate::Var::shape) returns
    /// too (a `Var`'s value lives on the tape and cannot lend a slice).
    /// [`Tensor::dims`] borrows the shape instead.
    ///
    /// ```
    /// # use tapegrad_core::{Shape, Tensor};
    /// let x = Tensor::<f64>::zeros([2, 3]);
    /// assert_eq!(x.shape(), Shape::from_slice(&[2, 3]));
    /// assert_eq!(x.dims(), &[2, 3]);
    /// ```
    #[inline]
    pub fn shape(&self) -> Shape {
        copy_shape(&self.shape)
    }

    /// The shape, borrowed: one size per dimension.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of dimensions); 0 for a scalar.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.as_slice().len()
    }

    /// The size along `axis` (negative axes count from the end).
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn dim(&self, axis: isize) -> usize {
        ok(self.try_dim(axis))
    }

    /// The size along `axis` (negative axes count from the end; a 0-d tensor has size 1
    /// along axis 0 and -1).
    ///
    /// # Errors
    /// [`Error::Axis`] if the axis is out of range.
    #[track_caller]
    pub fn try_dim(&self, axis: isize) -> Result<usize> {
        let a =
            crate::shape::normalize_axis("dim", axis, self.ndim(), std::panic::Location::caller())?;
        Ok(self.shape.get(a).copied().unwrap_or(1))
    }

    /// The elements in row-major order.
    #[inline]
    pub fn as_slice(&self) -> &[E] {
        self.storage.as_slice()
    }

    /// The elements in row-major order, writable. Copies the data first if it is shared
    /// with another tensor (copy-on-write), so no other tensor observes the write.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [E] {
        self.storage.as_mut_slice()
    }

    /// The elements as a new `Vec`, row-major.
    pub fn to_vec(&self) -> Vec<E> {
        self.as_slice().to_vec()
    }

    /// Whether `self` and `other` read the same memory (a clone or a reshape of each other).
    pub fn shares_storage_with(&self, other: &Tensor<E>) -> bool {
        match (&self.storage, &other.storage) {
            (Storage::Heap(a), Storage::Heap(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// The flat offset of a multi-index, or an error naming the offending index.
    #[track_caller]
    fn offset(&self, index: &[usize]) -> Result<usize> {
        if index.len() != self.ndim() {
            return Err(shape_error(
                "get",
                &[&self.shape],
                format!(
                    "an index of {} coordinates was given for rank {}",
                    index.len(),
                    self.ndim()
                ),
            ));
        }
        let mut off = 0;
        for (d, (&i, &n)) in index.iter().zip(self.shape.iter()).enumerate() {
            if i >= n {
                return Err(Error::Index {
                    op: "get",
                    index: i,
                    dim: d,
                    size: n,
                    location: std::panic::Location::caller(),
                });
            }
            off = off * n + i;
        }
        Ok(off)
    }

    /// The element at a multi-index.
    ///
    /// # Panics
    /// If the index has the wrong length or a coordinate is out of range.
    #[track_caller]
    pub fn get(&self, index: &[usize]) -> E {
        self.as_slice()[ok(self.offset(index))]
    }

    /// The element at a multi-index.
    ///
    /// # Errors
    /// If the index has the wrong length or a coordinate is out of range.
    #[track_caller]
    pub fn try_get(&self, index: &[usize]) -> Result<E> {
        Ok(self.as_slice()[self.offset(index)?])
    }

    /// Sets the element at a multi-index (copy-on-write).
    ///
    /// # Panics
    /// If the index has the wrong length or a coordinate is out of range.
    #[track_caller]
    pub fn set(&mut self, index: &[usize], value: E) {
        ok(self.try_set(index, value))
    }

    /// Sets the element at a multi-index (copy-on-write).
    ///
    /// # Errors
    /// If the index has the wrong length or a coordinate is out of range.
    #[track_caller]
    pub fn try_set(&mut self, index: &[usize], value: E) -> Result<()> {
        let off = self.offset(index)?;
        self.as_mut_slice()[off] = value;
        Ok(())
    }

    /// The single element of a one-element tensor (of any rank).
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element.
    #[track_caller]
    pub fn item(&self) -> E {
        ok(self.try_item())
    }

    /// The single element of a one-element tensor (of any rank).
    ///
    /// # Errors
    /// [`Error::Shape`] if the tensor does not hold exactly one element.
    #[track_caller]
    pub fn try_item(&self) -> Result<E> {
        match self.as_slice() {
            [v] => Ok(*v),
            _ => Err(shape_error(
                "item",
                &[&self.shape],
                "item() needs exactly one element",
            )),
        }
    }

    /// Applies `f` to every element.
    pub fn map<U: Element>(&self, f: impl Fn(E) -> U) -> Tensor<U> {
        let x = self.as_slice();
        Tensor {
            shape: self.shape.clone(),
            storage: Storage::from_iter_exact(x.len(), x.iter().map(|&v| f(v))),
        }
    }

    /// The same data under another shape with the same number of elements (no copy).
    ///
    /// # Panics
    /// If the element counts differ. (Use [`Tensor::reshape`] on float tensors for `-1`
    /// inference and a `Result` form.)
    #[track_caller]
    pub fn with_shape(&self, shape: impl IntoShape) -> Self {
        ok(self.try_with_shape(shape))
    }

    /// The same data under another shape with the same number of elements (no copy).
    ///
    /// # Errors
    /// [`Error::Shape`] if the element counts differ.
    #[track_caller]
    pub fn try_with_shape(&self, shape: impl IntoShape) -> Result<Self> {
        let shape = shape.into_shape();
        if checked_numel(&shape) != Some(self.numel()) {
            return Err(shape_error(
                "with_shape",
                &[&self.shape, &shape],
                "the element counts differ",
            ));
        }
        Ok(Tensor {
            shape,
            storage: self.storage.clone(),
        })
    }

    /// Internal: a one-element tensor of `like`'s shape holding `value`.
    #[inline]
    pub(crate) fn one_like(like: &Tensor<E>, value: E) -> Self {
        debug_assert_eq!(like.numel(), 1);
        Tensor {
            shape: copy_shape(&like.shape),
            storage: Storage::one(value),
        }
    }

    /// Internal: writes a one-element tensor holding `value`, shaped like `like`, straight
    /// into `dst`, field by field (built whole and moved, it goes through the stack in
    /// pieces of mismatched widths, and the reads stall store forwarding).
    ///
    /// # Safety
    /// `dst` must be valid for writes and aligned; what it held is overwritten, not dropped.
    #[inline(always)]
    pub(crate) unsafe fn write_one_like(dst: *mut Tensor<E>, like: &Tensor<E>, value: E) {
        // SAFETY: `dst` is valid for writes and aligned (the contract), so are its fields;
        // each is written whole without reading or dropping what was there.
        unsafe {
            std::ptr::addr_of_mut!((*dst).storage).write(Storage::one(value));
            std::ptr::addr_of_mut!((*dst).shape).write(copy_shape(&like.shape));
        }
    }

    /// Internal: whether dropping this tensor frees or releases anything (a buffer, or a
    /// shape of more than four dimensions).
    #[inline]
    pub(crate) fn owns_memory(&self) -> bool {
        matches!(self.storage, Storage::Heap(_)) || self.shape.spilled()
    }

    /// Internal: the element of a one-element tensor (`None` for any other size).
    #[inline]
    pub(crate) fn single(&self) -> Option<E> {
        match &self.storage {
            Storage::Inline { len: 1, data } => Some(data[0]),
            _ => None,
        }
    }

    /// Internal: the shape, for building a result of the same shape.
    #[inline]
    pub(crate) fn shape_owned(&self) -> Shape {
        copy_shape(&self.shape)
    }

    /// Internal: the same storage under a shape of equal element count.
    pub(crate) fn reshaped(&self, shape: Shape) -> Self {
        debug_assert_eq!(checked_numel(&shape), Some(self.numel()));
        Tensor {
            shape,
            storage: self.storage.clone(),
        }
    }
}

impl<E: Element> PartialEq for Tensor<E> {
    /// Equal shapes and equal elements (so NaN ≠ NaN, as for floats).
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.as_slice() == other.as_slice()
    }
}

/// The multi-index of flat position `i` in a row-major `shape`.
pub(crate) fn unravel(mut i: usize, shape: &[usize]) -> Shape {
    let mut idx: Shape = smallvec::SmallVec::from_elem(0, shape.len());
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
    }
    idx
}

#[cfg(test)]
mod tests;
