"""Student's t distribution without scipy: its CDF (regularized incomplete beta by a continued fraction), its
quantiles (bisection on the CDF) and the power of a two-sided paired t-test (the noncentral t, integrated over
the chi distribution of the sample standard deviation)."""

from __future__ import annotations

import math

_EPS = 1e-15
_TINY = 1e-300


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0 < p < 1), by bisection to machine precision."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return 0.5 * (low + high)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def paired_t_power(delta: float, sd: float, n: int, alpha: float = 0.05, steps: int = 4000) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` on ``n`` pairs whose differences are normal with
    mean ``delta`` and standard deviation ``sd``: P(|T| > t_{1-alpha/2, n-1}) under the noncentral t with
    noncentrality delta·√n/sd, integrated (Simpson) over the chi distribution of √V, V ~ χ²(n-1)."""
    if n < 2:
        raise ValueError("a paired t-test needs at least two pairs")
    df = n - 1
    critical = t_quantile(1.0 - alpha / 2.0, df)
    shift = delta * math.sqrt(n) / sd
    log_norm = (df / 2.0 - 1.0) * math.log(2.0) + math.lgamma(df / 2.0)
    top = math.sqrt(df) + 12.0

    def integrand(u: float) -> float:
        density = 0.0 if u == 0.0 and df > 1 else math.exp((df - 1) * math.log(u or 1.0) - u * u / 2.0 - log_norm)
        scale = critical * u / math.sqrt(df)
        return density * (_normal_cdf(shift - scale) + _normal_cdf(-shift - scale))

    h = top / steps
    total = integrand(0.0) + integrand(top)
    total += sum((4.0 if i % 2 else 2.0) * integrand(i * h) for i in range(1, steps))
    return total * h / 3.0


def seeds_for_power(delta: float, sd: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """The fewest pairs (seeds) with which the paired t-test detects ``delta`` with at least ``power``."""
    n = 2
    while paired_t_power(delta, sd, n, alpha) < power:
        n += 1
    return n
