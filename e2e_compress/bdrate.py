"""Bjontegaard delta rate (BD-rate) between two rate-distortion curves.

Method: for each curve, log(rate) is modelled as a function of quality; the
two are integrated over the overlapping quality interval; the mean difference
d gives BD-rate = (exp(d) - 1) * 100 %. Negative means the test curve needs
fewer bits than the reference for the same quality.

Two models of log(rate) are offered, since published BD-rates use both and
they differ, by tenths of a point on the curves here and by more when the
two curves are far apart:
`"pchip"` (the default), a piecewise cubic Hermite interpolant through the
points (monotone, as in the JVET/AOM common test conditions), and `"cubic"`,
the least-squares cubic polynomial of Bjontegaard's 2001 proposal (VCEG-M33),
which needs at least 4 points per curve.
"""

import numpy as np
from scipy import interpolate, integrate


METHODS = ("pchip", "cubic")


def _log_rate_of_quality(rates, qualities, method="pchip"):
    rates = np.asarray(rates, np.float64)
    qualities = np.asarray(qualities, np.float64)
    if rates.shape != qualities.shape or rates.ndim != 1:
        raise ValueError(f"rates and qualities must be 1-D of one length, got"
                         f" {rates.shape} and {qualities.shape}")
    keep = np.isfinite(rates) & np.isfinite(qualities) & (rates > 0)
    rates, qualities = rates[keep], qualities[keep]
    order = np.argsort(qualities)
    qualities, log_rates = qualities[order], np.log(rates[order])
    # Equal qualities would make the interpolant undefined: keep the cheapest.
    unique, first = np.unique(qualities, return_index=True)
    log_rates = np.array([log_rates[qualities == q].min() for q in unique])
    if len(unique) < 2:
        raise ValueError(f"a curve needs at least 2 distinct points, got {len(unique)}")
    if method == "pchip":
        return unique, interpolate.PchipInterpolator(unique, log_rates)
    if method == "cubic":
        if len(unique) < 4:
            raise ValueError(f"the cubic fit needs at least 4 distinct points,"
                             f" got {len(unique)}")
        return unique, np.polynomial.Polynomial.fit(unique, log_rates, 3)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def bd_rate(ref_rates, ref_qualities, test_rates, test_qualities,
            method: str = "pchip") -> float:
    """BD-rate of `test` against `ref`, in percent.

    Args:
      ref_rates, test_rates: bits per pixel (> 0) of each point.
      ref_qualities, test_qualities: quality of each point in a scale that is
        higher-is-better and roughly linear in log-rate (PSNR in dB, MS-SSIM
        in dB).
      method: `"pchip"` or `"cubic"` (module docstring).

    Returns:
      The average rate difference in percent over the overlapping quality
      range; NaN if the ranges do not overlap.
    """
    q_ref, f_ref = _log_rate_of_quality(ref_rates, ref_qualities, method)
    q_test, f_test = _log_rate_of_quality(test_rates, test_qualities, method)
    lo, hi = max(q_ref[0], q_test[0]), min(q_ref[-1], q_test[-1])
    if not hi > lo:
        return float("nan")
    ref_area = integrate.quad(f_ref, lo, hi, limit=200)[0]
    test_area = integrate.quad(f_test, lo, hi, limit=200)[0]
    return float((np.exp((test_area - ref_area) / (hi - lo)) - 1.0) * 100.0)


def rate_difference(ref_rates, ref_qualities, rate: float, quality: float) -> float:
    """Rate of one point against a curve at the same quality, in percent.

    The one-point analogue of `bd_rate`, on the same interpolant: the curve's
    rate at `quality` is read off the PCHIP of log(rate) against quality, and
    the result is `(rate / that - 1) * 100`. A single model is one point, so
    this is how far it sits from a baseline's curve.

    Args:
      ref_rates, ref_qualities: the curve, as in `bd_rate`.
      rate: bits per pixel (> 0) of the point.
      quality: its quality, in the curve's scale.

    Returns:
      Percent (negative: fewer bits than the curve needs for that quality);
      NaN if `quality` lies outside the curve's range.
    """
    q_ref, f_ref = _log_rate_of_quality(ref_rates, ref_qualities)
    if not (rate > 0 and q_ref[0] <= quality <= q_ref[-1]):
        return float("nan")
    return float((np.exp(np.log(rate) - f_ref(quality)) - 1.0) * 100.0)
