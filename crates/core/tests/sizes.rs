//! Sizes a caller can influence are checked: an element count, a byte count or an index
//! range that overflows is an error of the `try_` form and a panic at the caller's line of
//! the panicking form — never a tiny buffer written past its end (each case below ended the
//! process with SIGSEGV before the counts were checked), and never an abort.

use tapegrad_core::{Conv2dSpec, Error, Graph, Tensor, Window2d};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let e = std::panic::catch_unwind(f).expect_err("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Asserts that `msg` names this file (the caller's line, not the library's).
#[track_caller]
fn at_this_file(msg: &str) {
    assert!(
        msg.contains("crates/core/tests/sizes.rs:"),
        "not at the caller: {msg}"
    );
}

#[test]
fn constructors_refuse_counts_whose_bytes_overflow() {
    let e = Tensor::<f32>::try_zeros([1 << 62]).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "zeros", .. }), "{e}");
    assert!(
        e.to_string().contains("exceed the largest allocation"),
        "{e}"
    );
    at_this_file(&e.to_string());
    let e = Tensor::<f64>::try_full([1 << 61], 1.0).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "full", .. }), "{e}");
    at_this_file(&panic_message(|| drop(Tensor::<f32>::zeros([1 << 62]))));
    at_this_file(&panic_message(|| drop(Tensor::<f64>::full([1 << 61], 1.0))));
    at_this_file(&panic_message(|| drop(Tensor::<f64>::ones([usize::MAX]))));
    at_this_file(&panic_message(|| drop(Tensor::<f64>::eye(1 << 32))));
    at_this_file(&panic_message(|| {
        drop(Tensor::<f64>::from_fn([1 << 60, 1 << 4], |_| 0.0))
    }));
}

#[test]
fn shapes_whose_element_count_overflows_are_errors() {
    let huge = [2624990630713340405usize, 3210785958140063278];
    for shape in [&[1usize << 32, 1 << 32][..], &huge, &[1 << 40, 1 << 40, 0]] {
        let e = Tensor::<f32>::try_zeros(shape).unwrap_err();
        assert!(e.to_string().contains("element count overflows"), "{e}");
        assert!(e.to_string().contains(&format!("{shape:?}")), "{e}");
        let e = Tensor::<f64>::try_from_vec(vec![0.0; 6], shape).unwrap_err();
        assert!(e.to_string().starts_with("from_vec: "), "{e}");
        let e = Tensor::<f64>::zeros([6]).try_reshape(shape).unwrap_err();
        assert!(e.to_string().starts_with("reshape: "), "{e}");
        assert!(Tensor::<f64>::zeros([6]).try_with_shape(shape).is_err());
    }
    // A zero anywhere makes an empty tensor, as long as the other sizes are sane.
    assert_eq!(Tensor::<f32>::zeros([1 << 32, 0]).numel(), 0);
    assert_eq!(
        Tensor::<f32>::zeros([0, 3])
            .try_reshape([-1i64, 1 << 40])
            .unwrap()
            .dims(),
        &[0, 1 << 40]
    );
    // Reshaping with -1 next to sizes whose product overflows.
    assert!(Tensor::<f32>::zeros([0])
        .try_reshape([-1i64, 1 << 32, 1 << 32])
        .is_err());
}

#[test]
fn arange_refuses_absurd_counts_and_steps_away_from_the_end() {
    let e = Tensor::<f32>::try_arange(0.0, 1e30, 1e-30).unwrap_err();
    assert!(e.to_string().starts_with("arange: "), "{e}");
    at_this_file(&e.to_string());
    at_this_file(&panic_message(|| {
        drop(Tensor::<f32>::arange(0.0, 1e30, 1e-30))
    }));
    assert!(Tensor::<f32>::try_arange(0.0, f64::INFINITY, 1.0).is_err());
    assert!(Tensor::<f32>::try_arange(f64::NAN, 1.0, 1.0).is_err());
    assert!(Tensor::<f32>::try_arange(0.0, 5.0, -1.0).is_err());
    assert_eq!(Tensor::<f64>::arange(2.0, 2.0, 1.0).numel(), 0);
    assert_eq!(
        Tensor::<f64>::arange(3.0, 0.0, -1.0).to_vec(),
        vec![3.0, 2.0, 1.0]
    );
}

#[test]
fn movement_ops_check_their_index_arithmetic() {
    let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], [4]);
    for e in [
        x.try_narrow(0, 3, usize::MAX).unwrap_err(),
        x.try_narrow(0, usize::MAX, 2).unwrap_err(),
    ] {
        assert!(e.to_string().starts_with("narrow: "), "{e}");
        at_this_file(&e.to_string());
    }
    let e = x.try_split(&[usize::MAX, 5], 0).unwrap_err();
    assert!(e.to_string().starts_with("split: "), "{e}");
    for pads in [[(1usize << 62, 1usize << 62)], [(usize::MAX, 2)]] {
        let e = x.try_pad(&pads, 0.0).unwrap_err();
        assert!(e.to_string().starts_with("pad: "), "{e}");
        at_this_file(&e.to_string());
    }
    let e = x.try_broadcast_to(&[1 << 62, 4]).unwrap_err();
    assert!(e.to_string().starts_with("broadcast_to: "), "{e}");
    let mut spec = tapegrad_core::SliceSpec::full(&[4]);
    spec.dims[0] = (3, usize::MAX, 2);
    assert!(x.try_slice_spec(&spec).is_err());
    // Concatenating empty tensors whose joined dimension overflows.
    let z = Tensor::<f64>::zeros([0, 1 << 62]);
    assert!(Tensor::try_cat(&[&z, &z, &z, &z], 1).is_err());

    let g = Graph::<f64>::new();
    let v = g.leaf(x.clone());
    assert!(v.try_narrow(0, 3, usize::MAX).is_err());
    assert!(v.try_split(&[usize::MAX, 5], 0).is_err());
    assert!(v.try_pad(&[(1 << 62, 1 << 62)], 0.0).is_err());
    at_this_file(&panic_message(|| {
        let g = Graph::<f64>::new();
        let v = g.leaf(Tensor::zeros([4]));
        let _ = v.pad(&[(usize::MAX, 2)], 0.0);
    }));
}

#[test]
fn broadcasts_products_and_windows_check_their_output_size() {
    let a = Tensor::<f32>::zeros([1 << 23, 1]);
    let b = Tensor::<f32>::zeros([1, 1 << 23]);
    // 2^46 elements: 256 TiB, more than the address space, whatever the overcommit policy.
    let e = a.try_binary(tapegrad_core::BinaryOp::Add, &b).unwrap_err();
    assert!(e.to_string().starts_with("add: "), "{e}");
    assert!(
        matches!(e, Error::Alloc { .. } | Error::Shape { .. }),
        "{e}"
    );
    at_this_file(&e.to_string());
    // A product whose inner dimension is empty and whose output is absurd.
    let l = Tensor::<f32>::zeros([1 << 40, 0]);
    let r = Tensor::<f32>::zeros([0, 1 << 40]);
    let e = l.try_matmul(&r).unwrap_err();
    assert!(e.to_string().starts_with("matmul: "), "{e}");
    // conv2d with a padding that overflows every window computation.
    let g = Graph::<f32>::new();
    let x = g.leaf(Tensor::zeros([1, 1, 3, 3]));
    let w = g.leaf(Tensor::zeros([1, 1, 3, 3]));
    let e = x
        .try_conv2d(
            w,
            None,
            Conv2dSpec::default().with_padding(1 << 62, 1 << 62),
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("conv2d: "), "{e}");
    at_this_file(&e.to_string());
    let e = x
        .try_unfold2d(Window2d::new(3, 3).with_padding(1 << 62, 1 << 62))
        .unwrap_err();
    assert!(e.to_string().starts_with("unfold: "), "{e}");
    let e = x
        .try_max_pool2d(Window2d::new(2, 2).with_stride(usize::MAX, 1))
        .unwrap_err();
    assert!(e.to_string().starts_with("pool2d: "), "{e}");
    // one_hot into more classes than memory.
    let i = Tensor::<usize>::from_vec(vec![0, 1], [2]);
    let e = Tensor::<f32>::try_one_hot(&i, 1 << 62).unwrap_err();
    assert!(e.to_string().starts_with("one_hot: "), "{e}");
    // index_select of 2^24 rows of 2^24: 1 PiB.
    let rows = Tensor::<f32>::zeros([1, 1 << 24]);
    let e = rows
        .try_index_select(0, &Tensor::full([1 << 24], 0usize))
        .unwrap_err();
    assert!(e.to_string().starts_with("index_select: "), "{e}");
}
