"""Reference forward values of the unary ops, computed with Python's `decimal` at 50 digits
from series and identities written out here (no libm, no PyTorch), so that they are
independent of every implementation the tests compare them with.

    python3 scripts/forward_values.py > crates/core/tests/reference/forward_values.json

A gradient check cannot see a wrong forward (it differentiates whatever the forward is);
these values can.
"""
import json
from decimal import Decimal as D, getcontext

getcontext().prec = 50
PI = D("3.14159265358979323846264338327950288419716939937510")


def exp(x):
    # e^x = (e^(x/2^k))^(2^k), the inner one by its Taylor series.
    k = 0
    while abs(x) > D("0.01"):
        x /= 2
        k += 1
    s, t, n = D(1), D(1), 1
    while True:
        t = t * x / n
        if abs(t) < D("1e-60"):
            break
        s += t
        n += 1
    for _ in range(k):
        s *= s
    return s


def ln(x):
    # Newton on e^y = x.
    y = D(float(x)).ln() if x > 0 else None  # a starting point only (decimal's own ln)
    for _ in range(60):
        y = y - 1 + x / exp(y)
    return y


def sin_cos(x):
    x = x % (2 * PI)
    s, c, t, n = D(0), D(0), D(1), 0
    # t = x^n / n!
    while True:
        if n % 4 == 0:
            c += t
        elif n % 4 == 1:
            s += t
        elif n % 4 == 2:
            c -= t
        else:
            s -= t
        n += 1
        t = t * x / n
        if abs(t) < D("1e-60") and n > 5:
            break
    return s, c


def erf(x):
    # 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), converging for |x| <= 4 at this precision
    s, t, n = D(0), x, 0
    while True:
        term = t / (2 * n + 1)
        s += term
        n += 1
        t = -t * x * x / n
        if abs(t) < D("1e-70"):
            break
    return 2 / PI.sqrt() * s


def tanh(x):
    e = exp(2 * x)
    return (e - 1) / (e + 1)


SQRT_2_OVER_PI = (2 / PI).sqrt()
ops = {
    "log1p": lambda x: ln(1 + x),
    "expm1": lambda x: exp(x) - 1,
    "rsqrt": lambda x: 1 / x.sqrt(),
    "recip": lambda x: 1 / x,
    "sin": lambda x: sin_cos(x)[0],
    "cos": lambda x: sin_cos(x)[1],
    "exp": exp,
    "log": ln,
    "sqrt": lambda x: x.sqrt(),
    "tanh": tanh,
    "sigmoid": lambda x: 1 / (1 + exp(-x)),
    "erf": erf,
    "gelu": lambda x: x * (1 + erf(x / D(2).sqrt())) / 2,
    "gelu_tanh": lambda x: x * (1 + tanh(SQRT_2_OVER_PI * (x + D("0.044715") * x ** 3))) / 2,
    "silu": lambda x: x / (1 + exp(-x)),
    "softplus": lambda x: ln(1 + exp(x)),
}
# Points where each op is defined (log-like ops on positives); both signs and small and
# large magnitudes, as exact binary fractions so that the f64 input is the decimal one.
common = ["-3.5", "-1.25", "-0.5", "-0.0078125", "0.0078125", "0.375", "1.5", "2.75", "4"]
positive = ["0.0078125", "0.125", "0.5", "1", "1.75", "3", "12.5", "1000"]
points = {
    "log1p": ["-0.875", "-0.0078125", "0.0009765625", "0.5", "3", "100"],
    "expm1": ["-5", "-0.5", "-0.0009765625", "0.0009765625", "0.625", "3"],
    "rsqrt": positive,
    "recip": ["-7.5", "-0.25", "0.0078125", "0.75", "3", "1000"],
    "sin": common + ["10", "100.5"],
    "cos": common + ["10", "100.5"],
    "exp": common,
    "log": positive,
    "sqrt": positive,
    "tanh": common,
    "sigmoid": common,
    "erf": common,
    "gelu": common,
    "gelu_tanh": common,
    "silu": common,
    "softplus": common,
}
out = {
    "generator": "scripts/forward_values.py (Python decimal, 50 digits, series written out)",
    "ops": {
        name: [[float(D(p)), format(ops[name](D(p)), ".25e")] for p in points[name]]
        for name in ops
    },
}
print(json.dumps(out, indent=1))
