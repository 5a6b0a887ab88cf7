//! The claims of `examples/second_order.rs` on the same seeded problems (they are small):
//! Newton's method with exact Hessians converges quadratically to ‖∇‖ ≤ 1e-10 in at most 10
//! iterations, and on the ill-conditioned problem L-BFGS needs at least 5× its iterations to
//! reach ‖∇‖ ≤ 1e-6 and ends at the same loss to 1e-10.

#[path = "../examples/common/second_order.rs"]
mod second_order;

use second_order::{check_claims, lbfgs, newton, Problem, TOL};

#[test]
fn newton_is_quadratic_on_the_well_conditioned_problem() {
    let p = Problem::synthetic(500, 10, 0.0, 1e-2, 0);
    check_claims("well", &newton(&p, TOL, 50), &lbfgs(&p, TOL, 50));
}

#[test]
fn lbfgs_needs_five_times_newtons_iterations_on_the_ill_conditioned_problem() {
    let p = Problem::synthetic(1000, 50, 1.5, 1e-4, 1);
    check_claims("ill", &newton(&p, TOL, 50), &lbfgs(&p, TOL, 400));
}
