//! Every public fallible op, given bad arguments, in both forms: the `try_` form's error and
//! the panicking form's message name the op the caller called, the shapes or values at
//! fault, and this file's own line — never a line inside the library.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tapegrad_core::{
    BinaryOp, Cmp, Conv2dSpec, Graph, ParamStore, Result, SliceSpec, Tensor, Transpose, Window2d,
};

fn panic_message(f: impl FnOnce()) -> String {
    let e = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Checks that `msg` starts with `op: `, contains every fragment, and was raised at this
/// file's line `line` (the macro's first line) or the few after it (a call split by rustfmt).
fn check(form: &str, msg: &str, op: &str, frags: &[&str], line: u32) {
    assert!(
        msg.starts_with(&format!("{op}: ")),
        "{form} form of {op}: does not start with the op: {msg}"
    );
    for f in frags {
        assert!(msg.contains(f), "{form} form of {op}: no {f:?} in: {msg}");
    }
    let at = msg
        .rsplit_once("(at crates/core/tests/errors.rs:")
        .map(|(_, rest)| rest.split(':').next().unwrap().parse::<u32>().unwrap());
    assert!(
        at.is_some_and(|l| (line..line + 8).contains(&l)),
        "{form} form of {op}: not at this file's line {line}: {msg}"
    );
}

/// `refused!(try_form, panicking_form, "op", ["fragment", ...])`.
macro_rules! refused {
    ($try:expr, $panicking:expr, $op:literal, [$($frag:literal),*]) => {{
        let line = line!();
        let r: Result<_> = $try;
        let e = match r {
            Ok(_) => panic!("{}: accepted (line {line})", $op),
            Err(e) => e.to_string(),
        };
        check("try_", &e, $op, &[$($frag),*], line);
        let m = panic_message(|| {
            let _ = $panicking;
        });
        check("panicking", &m, $op, &[$($frag),*], line);
        1usize
    }};
}

#[test]
fn tensor_ops_refuse_bad_arguments_at_the_callers_line() {
    let t = Tensor::<f64>::zeros([2, 3]);
    let s = Tensor::<f64>::scalar(1.0);
    let cube = Tensor::<f64>::zeros([2, 2, 2]);
    let img = Tensor::<f64>::zeros([1, 1, 3, 3]);
    let i5 = Tensor::<usize>::from_vec(vec![5], [1]);
    let n = refused!(t.try_reshape([4]), t.reshape([4]), "reshape", ["[2, 3]"])
        + refused!(
            t.try_reshape([-1, -1]),
            t.reshape([-1, -1]),
            "reshape",
            ["-1"]
        )
        + refused!(t.try_permute([0]), t.permute([0]), "permute", ["[2, 3]"])
        + refused!(
            t.try_permute([0, 0]),
            t.permute([0, 0]),
            "permute",
            ["repeats"]
        )
        + refused!(
            t.try_transpose(0, 5),
            t.transpose(0, 5),
            "transpose",
            ["axis 5", "rank 2"]
        )
        + refused!(
            s.try_transpose(0, 1),
            s.transpose(0, 1),
            "transpose",
            ["axis 1", "rank 0"]
        )
        + refused!(cube.try_t(), cube.t(), "t", ["[2, 2, 2]"])
        + refused!(
            t.try_broadcast_to(&[3, 3]),
            t.broadcast_to(&[3, 3]),
            "broadcast_to",
            ["[2, 3]", "[3, 3]"]
        )
        + refused!(
            t.try_narrow(1, 2, 2),
            t.narrow(1, 2, 2),
            "narrow",
            ["[2, 3]"]
        )
        + refused!(
            t.try_narrow(2, 0, 1),
            t.narrow(2, 0, 1),
            "narrow",
            ["axis 2"]
        )
        + refused!(
            t.try_slice(0, 0, 1, 0),
            t.slice(0, 0, 1, 0),
            "slice",
            ["step"]
        )
        + refused!(
            t.try_slice_spec(&SliceSpec::full(&[2, 4])),
            t.slice_spec(&SliceSpec::full(&[2, 4])),
            "slice",
            ["[2, 3]", "[2, 4]"]
        )
        + refused!(t.try_select(0, 2), t.select(0, 2), "select", ["[2, 3]"])
        + refused!(s.try_select(0, 0), s.select(0, 0), "select", ["0-d"])
        + refused!(
            t.try_pad(&[(1, 1); 3], 0.0),
            t.pad(&[(1, 1); 3], 0.0),
            "pad",
            ["[2, 3]"]
        )
        + refused!(
            Tensor::try_cat(&[&t, &cube], 0),
            Tensor::cat(&[&t, &cube], 0),
            "cat",
            ["[2, 3]", "[2, 2, 2]"]
        )
        + refused!(
            Tensor::<f64>::try_cat(&[], 0),
            Tensor::<f64>::cat(&[], 0),
            "cat",
            ["at least one"]
        )
        + refused!(
            Tensor::try_stack(&[&t, &cube], 0),
            Tensor::stack(&[&t, &cube], 0),
            "stack",
            ["[2, 3]", "[2, 2, 2]"]
        )
        + refused!(
            t.try_split(&[1, 2], 0),
            t.split(&[1, 2], 0),
            "split",
            ["[2, 3]", "[1, 2]"]
        )
        + refused!(
            t.try_chunk(0, 0),
            t.chunk(0, 0),
            "chunk",
            ["at least one chunk"]
        )
        + refused!(
            t.try_squeeze_dim(5),
            t.squeeze_dim(5),
            "squeeze_dim",
            ["axis 5"]
        )
        + refused!(t.try_unsqueeze(4), t.unsqueeze(4), "unsqueeze", ["axis 4"])
        + refused!(
            t.try_flatten(1, 0),
            t.flatten(1, 0),
            "flatten",
            ["start axis 1"]
        )
        + refused!(
            t.try_sum_to(&[4]),
            t.sum_to(&[4]),
            "sum_to",
            ["[2, 3]", "[4]"]
        )
        + refused!(
            t.try_sum_dim(5, false),
            t.sum_dim(5, false),
            "sum",
            ["axis 5"]
        )
        + refused!(
            t.try_sum_dim([0, 0], false),
            t.sum_dim([0, 0], false),
            "sum",
            ["twice"]
        )
        + refused!(
            t.try_mean_dim(-3, false),
            t.mean_dim(-3, false),
            "mean",
            ["axis -3"]
        )
        + refused!(
            t.try_var_dim(2, true, false),
            t.var_dim(2, true, false),
            "var",
            ["axis 2"]
        )
        + refused!(
            t.try_std_dim(2, true, false),
            t.std_dim(2, true, false),
            "std",
            ["axis 2"]
        )
        + refused!(
            t.try_prod_dim(2, false),
            t.prod_dim(2, false),
            "prod",
            ["axis 2"]
        )
        + refused!(
            t.try_logsumexp_dim(2, false),
            t.logsumexp_dim(2, false),
            "logsumexp",
            ["axis 2"]
        )
        + refused!(
            Tensor::<f64>::zeros([0, 2]).try_amax(0, false),
            Tensor::<f64>::zeros([0, 2]).amax(0, false),
            "amax",
            ["empty", "[0, 2]"]
        )
        + refused!(t.try_amin(2, false), t.amin(2, false), "amin", ["axis 2"])
        + refused!(t.try_norm(-1.0), t.norm(-1.0), "norm", ["-1"])
        + refused!(
            t.try_norm_dim(2.0, 4, false),
            t.norm_dim(2.0, 4, false),
            "norm",
            ["axis 4"]
        )
        + refused!(
            t.try_argmax(2, false),
            t.argmax(2, false),
            "argmax",
            ["axis 2"]
        )
        + refused!(
            t.try_argmin(2, false),
            t.argmin(2, false),
            "argmin",
            ["axis 2"]
        )
        + refused!(
            t.try_matmul(&t),
            t.matmul(&t),
            "matmul",
            ["[2, 3] and [2, 3]"]
        )
        + refused!(s.try_matmul(&t), s.matmul(&t), "matmul", ["[]"])
        + refused!(
            t.try_matmul_t(&Tensor::zeros([3]), Transpose::No, Transpose::No),
            t.matmul_t(&Tensor::zeros([3]), Transpose::No, Transpose::No),
            "matmul_t",
            ["[2, 3] and [3]"]
        )
        + refused!(
            t.try_add(&Tensor::zeros([4])),
            t.add(&Tensor::zeros([4])),
            "add",
            ["[2, 3] and [4]"]
        )
        + refused!(
            t.try_pow(&Tensor::zeros([4])),
            t.pow(&Tensor::zeros([4])),
            "pow",
            ["[4]"]
        )
        + refused!(
            t.try_binary(BinaryOp::Maximum, &cube),
            t.binary(BinaryOp::Maximum, &cube),
            "maximum",
            ["[2, 2, 2]"]
        )
        + refused!(
            t.try_compare(&Tensor::zeros([4]), Cmp::Lt),
            t.compare(&Tensor::zeros([4]), Cmp::Lt),
            "compare",
            ["[4]"]
        )
        + refused!(
            t.try_index_select(0, &i5),
            t.index_select(0, &i5),
            "index_select",
            ["index 5", "size 2"]
        )
        + refused!(
            t.try_index_add(0, &i5, &Tensor::zeros([1, 3])),
            t.index_add(0, &i5, &Tensor::zeros([1, 3])),
            "index_add",
            ["index 5", "size 2"]
        )
        + refused!(
            t.try_index_add(0, &Tensor::from_vec(vec![1], [1]), &t),
            t.index_add(0, &Tensor::from_vec(vec![1], [1]), &t),
            "index_add",
            ["[1, 3]"]
        )
        + refused!(
            t.try_gather(1, &Tensor::from_vec(vec![3, 0], [2, 1])),
            t.gather(1, &Tensor::from_vec(vec![3, 0], [2, 1])),
            "gather",
            ["index 3", "size 3"]
        )
        + refused!(
            t.try_scatter_add(0, &Tensor::from_vec(vec![0], [1]), &t),
            t.scatter_add(0, &Tensor::from_vec(vec![0], [1]), &t),
            "scatter_add",
            ["[1]"]
        )
        + refused!(
            t.try_masked_fill(&Tensor::from_vec(vec![true; 4], [4]), 1.0),
            t.masked_fill(&Tensor::from_vec(vec![true; 4], [4]), 1.0),
            "masked_fill",
            ["[2, 3]", "[4]"]
        )
        + refused!(
            Tensor::try_where_cond(&Tensor::from_vec(vec![true; 4], [4]), &t, &t),
            Tensor::where_cond(&Tensor::from_vec(vec![true; 4], [4]), &t, &t),
            "where",
            ["[4]"]
        )
        + refused!(
            Tensor::<f64>::try_one_hot(&i5, 3),
            Tensor::<f64>::one_hot(&i5, 3),
            "one_hot",
            ["index 5", "size 3"]
        )
        + refused!(t.try_softmax(2), t.softmax(2), "softmax", ["axis 2"])
        + refused!(
            t.try_log_softmax(-3),
            t.log_softmax(-3),
            "log_softmax",
            ["axis -3"]
        )
        + refused!(
            t.try_normalize(2, 1e-5),
            t.normalize(2, 1e-5),
            "normalize",
            ["axis 2"]
        )
        + refused!(
            cube.try_unfold2d(Window2d::new(2, 2)),
            cube.unfold2d(Window2d::new(2, 2)),
            "unfold",
            ["[2, 2, 2]"]
        )
        + refused!(
            img.try_unfold2d(Window2d::new(4, 4)),
            img.unfold2d(Window2d::new(4, 4)),
            "unfold",
            ["larger than the padded image"]
        )
        + refused!(
            cube.try_fold2d(Window2d::new(2, 2), (3, 3)),
            cube.fold2d(Window2d::new(2, 2), (3, 3)),
            "fold",
            ["[2, 2, 2]"]
        )
        + refused!(
            t.try_get(&[2, 0]),
            t.get(&[2, 0]),
            "get",
            ["index 2", "size 2"]
        )
        + refused!(t.try_get(&[0]), t.get(&[0]), "get", ["[2, 3]"])
        + refused!(
            t.clone().try_set(&[0, 3], 1.0),
            t.clone().set(&[0, 3], 1.0),
            "get",
            ["index 3"]
        )
        + refused!(t.try_item(), t.item(), "item", ["[2, 3]"])
        + refused!(t.try_dim(2), t.dim(2), "dim", ["axis 2"])
        + refused!(
            t.try_with_shape([5]),
            t.with_shape([5]),
            "with_shape",
            ["[2, 3]", "[5]"]
        )
        + refused!(
            Tensor::try_from_vec(vec![1.0f64; 5], [2, 3]),
            Tensor::from_vec(vec![1.0f64; 5], [2, 3]),
            "from_vec",
            ["[2, 3]", "5 were given"]
        )
        + refused!(
            Tensor::<f64>::try_zeros([1 << 62]),
            Tensor::<f64>::zeros([1 << 62]),
            "zeros",
            ["[4611686018427387904]"]
        )
        + refused!(
            Tensor::<f64>::try_ones([1 << 62]),
            Tensor::<f64>::ones([1 << 62]),
            "ones",
            ["[4611686018427387904]"]
        )
        + refused!(
            Tensor::<f64>::try_full([1 << 62], 1.0),
            Tensor::<f64>::full([1 << 62], 1.0),
            "full",
            ["[4611686018427387904]"]
        )
        + refused!(
            Tensor::<f64>::try_from_fn([1 << 62], |_| 0.0),
            Tensor::<f64>::from_fn([1 << 62], |_| 0.0),
            "from_fn",
            ["[4611686018427387904]"]
        )
        + refused!(
            Tensor::<f64>::try_arange(0.0, 1.0, 0.0),
            Tensor::<f64>::arange(0.0, 1.0, 0.0),
            "arange",
            ["step"]
        );
    assert_eq!(n, 70);
}

#[test]
fn recorded_ops_refuse_bad_arguments_at_the_callers_line() {
    let g = Graph::<f64>::new();
    let t = g.leaf(Tensor::zeros([2, 3]));
    let s = g.leaf(Tensor::scalar(1.0));
    let cube = g.leaf(Tensor::zeros([2, 2, 2]));
    let img = g.leaf(Tensor::zeros([1, 1, 3, 3]));
    let w = g.leaf(Tensor::zeros([2, 2, 3, 3]));
    let w1 = g.leaf(Tensor::zeros([2, 1, 3, 3]));
    let i5 = Tensor::<usize>::from_vec(vec![5], [1]);
    let n = refused!(t.try_reshape([4]), t.reshape([4]), "reshape", ["[2, 3]"])
        + refused!(t.try_permute([0]), t.permute([0]), "permute", ["[2, 3]"])
        + refused!(
            t.try_transpose(0, 5),
            t.transpose(0, 5),
            "transpose",
            ["axis 5"]
        )
        + refused!(
            s.try_transpose(0, 1),
            s.transpose(0, 1),
            "transpose",
            ["axis 1", "rank 0"]
        )
        + refused!(cube.try_t(), cube.t(), "t", ["[2, 2, 2]"])
        + refused!(
            t.try_broadcast_to(&[3, 3]),
            t.broadcast_to(&[3, 3]),
            "broadcast_to",
            ["[2, 3]", "[3, 3]"]
        )
        + refused!(
            t.try_broadcast_to(&[3, 3]),
            t.expand(&[3, 3]),
            "broadcast_to",
            ["[3, 3]"]
        )
        + refused!(
            t.try_narrow(1, 2, 2),
            t.narrow(1, 2, 2),
            "narrow",
            ["[2, 3]"]
        )
        + refused!(
            t.try_slice(0, 0, 1, 0),
            t.slice(0, 0, 1, 0),
            "slice",
            ["step"]
        )
        + refused!(
            t.try_slice_spec(&SliceSpec::full(&[2, 4])),
            t.slice_spec(&SliceSpec::full(&[2, 4])),
            "slice",
            ["[2, 4]"]
        )
        + refused!(t.try_select(0, 2), t.select(0, 2), "select", ["[2, 3]"])
        + refused!(s.try_select(0, 0), s.select(0, 0), "select", ["0-d"])
        + refused!(
            t.try_pad(&[(1, 1); 3], 0.0),
            t.pad(&[(1, 1); 3], 0.0),
            "pad",
            ["[2, 3]"]
        )
        + refused!(
            tapegrad_core::Var::try_cat(&[t, cube], 0),
            tapegrad_core::Var::cat(&[t, cube], 0),
            "cat",
            ["[2, 3]", "[2, 2, 2]"]
        )
        + refused!(
            tapegrad_core::Var::try_stack(&[t, cube], 0),
            tapegrad_core::Var::stack(&[t, cube], 0),
            "stack",
            ["[2, 3]", "[2, 2, 2]"]
        )
        + refused!(
            t.try_split(&[1, 2], 0),
            t.split(&[1, 2], 0),
            "split",
            ["[1, 2]"]
        )
        + refused!(
            t.try_chunk(0, 0),
            t.chunk(0, 0),
            "chunk",
            ["at least one chunk"]
        )
        + refused!(
            t.try_squeeze_dim(5),
            t.squeeze_dim(5),
            "squeeze_dim",
            ["axis 5"]
        )
        + refused!(t.try_unsqueeze(4), t.unsqueeze(4), "unsqueeze", ["axis 4"])
        + refused!(
            t.try_flatten(1, 0),
            t.flatten(1, 0),
            "flatten",
            ["start axis 1"]
        )
        + refused!(t.try_sum_to(&[4]), t.sum_to(&[4]), "sum_to", ["[4]"])
        + refused!(
            t.try_sum_dim(5, false),
            t.sum_dim(5, false),
            "sum",
            ["axis 5"]
        )
        + refused!(
            t.try_mean_dim(-3, false),
            t.mean_dim(-3, false),
            "mean",
            ["axis -3"]
        )
        + refused!(
            t.try_var_dim(2, true, false),
            t.var_dim(2, true, false),
            "var",
            ["axis 2"]
        )
        + refused!(
            t.try_std_dim(2, true, false),
            t.std_dim(2, true, false),
            "std",
            ["axis 2"]
        )
        + refused!(t.try_amax(2, false), t.amax(2, false), "amax", ["axis 2"])
        + refused!(t.try_norm(0.0), t.norm(0.0), "norm", ["p must be > 0"])
        + refused!(
            t.try_norm_dim(2.0, 4, false),
            t.norm_dim(2.0, 4, false),
            "norm",
            ["axis 4"]
        )
        + refused!(
            t.try_max_dim(2, false),
            t.max_dim(2, false),
            "argmax",
            ["axis 2"]
        )
        + refused!(
            t.try_min_dim(2, false),
            t.min_dim(2, false),
            "argmin",
            ["axis 2"]
        )
        + refused!(
            t.try_argmax(2, false),
            t.argmax(2, false),
            "argmax",
            ["axis 2"]
        )
        + refused!(
            t.try_matmul(t),
            t.matmul(t),
            "matmul",
            ["[2, 3] and [2, 3]"]
        )
        + refused!(
            t.try_matmul_t(t, Transpose::No, Transpose::No),
            t.matmul_t(t, Transpose::No, Transpose::No),
            "matmul",
            ["[2, 3] and [2, 3]"]
        )
        + refused!(t.try_add(cube), t + cube, "add", ["[2, 3] and [2, 2, 2]"])
        + refused!(t.try_mul(cube), t * cube, "mul", ["[2, 2, 2]"])
        + refused!(t.try_div(cube), t / cube, "div", ["[2, 2, 2]"])
        + refused!(t.try_sub(cube), t - cube, "sub", ["[2, 2, 2]"])
        + refused!(
            t.try_compare(cube, Cmp::Gt),
            t.compare(cube, Cmp::Gt),
            "compare",
            ["[2, 2, 2]"]
        )
        + refused!(
            t.try_index_select(0, &i5),
            t.index_select(0, &i5),
            "index_select",
            ["index 5"]
        )
        + refused!(
            t.try_index_add(0, &i5, g.constant(Tensor::zeros([1, 3]))),
            t.index_add(0, &i5, g.constant(Tensor::zeros([1, 3]))),
            "index_add",
            ["index 5", "size 2"]
        )
        + refused!(
            t.try_gather(1, &Tensor::from_vec(vec![3, 0], [2, 1])),
            t.gather(1, &Tensor::from_vec(vec![3, 0], [2, 1])),
            "gather",
            ["index 3"]
        )
        + refused!(
            t.try_scatter_add(0, &Tensor::from_vec(vec![0], [1]), t),
            t.scatter_add(0, &Tensor::from_vec(vec![0], [1]), t),
            "scatter_add",
            ["[1]"]
        )
        + refused!(
            t.try_masked_fill(&Tensor::from_vec(vec![true; 4], [4]), 1.0),
            t.masked_fill(&Tensor::from_vec(vec![true; 4], [4]), 1.0),
            "masked_fill",
            ["[4]"]
        )
        + refused!(
            tapegrad_core::Var::try_where_cond(&Tensor::from_vec(vec![true; 4], [4]), t, t),
            tapegrad_core::Var::where_cond(&Tensor::from_vec(vec![true; 4], [4]), t, t),
            "where",
            ["[4]"]
        )
        + refused!(t.try_softmax(2), t.softmax(2), "softmax", ["axis 2"])
        + refused!(
            t.try_log_softmax(-3),
            t.log_softmax(-3),
            "log_softmax",
            ["axis -3"]
        )
        + refused!(
            t.try_normalize(2, 1e-5),
            t.normalize(2, 1e-5),
            "normalize",
            ["axis 2"]
        )
        + refused!(
            t.try_normalize_with_stats(2, 1e-5),
            t.normalize_with_stats(2, 1e-5),
            "normalize",
            ["axis 2"]
        )
        + refused!(
            cube.try_unfold2d(Window2d::new(2, 2)),
            cube.unfold2d(Window2d::new(2, 2)),
            "unfold",
            ["[2, 2, 2]"]
        )
        + refused!(
            cube.try_fold2d(Window2d::new(2, 2), (3, 3)),
            cube.fold2d(Window2d::new(2, 2), (3, 3)),
            "fold",
            ["[2, 2, 2]"]
        )
        + refused!(
            img.try_conv2d(w, None, Conv2dSpec::default()),
            img.conv2d(w, None, Conv2dSpec::default()),
            "conv2d",
            ["[1, 1, 3, 3] and [2, 2, 3, 3]"]
        )
        + refused!(
            img.try_conv2d(w1, Some(t), Conv2dSpec::default()),
            img.conv2d(w1, Some(t), Conv2dSpec::default()),
            "conv2d",
            ["[2, 1, 3, 3] and [2, 3]"]
        )
        + refused!(
            cube.try_max_pool2d(Window2d::new(2, 2)),
            cube.max_pool2d(Window2d::new(2, 2)),
            "pool2d",
            ["[2, 2, 2]"]
        )
        + refused!(
            img.try_avg_pool2d(Window2d::new(2, 2).with_padding(2, 0)),
            img.avg_pool2d(Window2d::new(2, 2).with_padding(2, 0)),
            "pool2d",
            ["padding"]
        )
        + refused!(t.try_item(), t.item(), "item", ["[2, 3]"])
        + refused!(t.try_backward(), t.backward(), "backward", ["[2, 3]"])
        + refused!(
            t.try_backward_with(&Tensor::zeros([3])),
            t.backward_with(&Tensor::zeros([3])),
            "backward",
            ["[2, 3]", "[3]"]
        )
        + refused!(
            t.try_backward_create_graph(),
            t.backward_create_graph(),
            "backward_create_graph",
            ["[2, 3]"]
        );
    assert_eq!(n, 58);
}

#[test]
fn a_key_of_another_store_is_refused_at_the_callers_line() {
    let mut a = ParamStore::<f64>::new();
    let b = {
        let mut b = ParamStore::<f64>::new();
        b.insert("w", Tensor::zeros([3]));
        b
    };
    let ka = a.insert("w", Tensor::zeros([2]));
    let g = Graph::<f64>::new();
    let n = refused!(
        g.try_param(&b, ka),
        g.param(&b, ka),
        "ParamStore",
        ["belongs to another store"]
    ) + refused!(
        b.try_get(ka),
        b.value(ka),
        "ParamStore",
        ["belongs to another store"]
    );
    assert_eq!(n, 2);
    // With its own store, and a clone of it, the key works.
    assert_eq!(g.param(&a.clone(), ka).shape().as_slice(), &[2]);
    a.remove(ka);
    let _ = refused!(
        g.try_param(&a, ka),
        g.param(&a, ka),
        "ParamStore",
        ["removed"]
    );
}
