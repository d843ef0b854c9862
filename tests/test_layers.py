"""The transforms and the entropy bottleneck, checked against closed forms."""

import numpy as np
import pytest
import tensorflow as tf

from e2e_compress import layers, rate


def _gdn_layers(transform):
    import tensorflow_compression as tfc

    return [l.activation for l in transform.layers
            if isinstance(getattr(l, "activation", None), tfc.GDN)]


def test_gdn_matches_the_papers_closed_form_at_initialisation():
    # beta starts at 1 and gamma at 0.1 * identity, so the paper's GDN is
    # y_i = x_i / sqrt(1 + 0.1 x_i^2) and inverse GDN x_i * sqrt(1 + 0.1 x_i^2).
    x = tf.random.stateless_normal((2, 5, 7, 8), seed=(1, 2)) * 3
    gdn = _gdn_layers(layers.AnalysisTransform(8))[0]
    igdn = _gdn_layers(layers.SynthesisTransform(8))[0]
    np.testing.assert_allclose(gdn(x), x / tf.sqrt(1 + 0.1 * x ** 2),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(igdn(x), x * tf.sqrt(1 + 0.1 * x ** 2),
                               rtol=1e-5, atol=1e-5)
    # The same function as tfc's GDN with these exponents, for any weights.
    import tensorflow_compression as tfc

    for ours, inverse in ((gdn, False), (igdn, True)):
        theirs = tfc.GDN(inverse=inverse, alpha_parameter=2.0,
                         epsilon_parameter=0.5)
        theirs(x)
        for name in ("beta_parameter", "gamma_parameter"):
            value = tf.random.stateless_uniform(
                getattr(ours, name).variable.shape, seed=(6, 7), maxval=0.3)
            getattr(ours, name).variable.assign(value)
            getattr(theirs, name).variable.assign(value)
        np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(tf.function(ours)(x), theirs(x),
                                   rtol=1e-5, atol=1e-5)
    gdn = _gdn_layers(layers.AnalysisTransform(8))[0]
    # Channels interact only through gamma, which starts diagonal.
    x2 = tf.concat([x[..., :1] * 0 + 100.0, x[..., 1:]], axis=-1)
    np.testing.assert_allclose(gdn(x2)[..., 1:], gdn(x)[..., 1:], rtol=1e-6)


def test_transforms_have_the_papers_stages():
    import tensorflow_compression as tfc

    transform = layers.AnalysisTransform(8)
    convs = [l for l in transform.layers if isinstance(l, tfc.SignalConv2D)]
    assert [c.strides_down for c in convs] == [(4, 4), (2, 2), (2, 2)]
    assert [c.kernel_support for c in convs] == [(9, 9), (5, 5), (5, 5)]
    assert all(c.corr for c in convs)
    gdns = [c.activation for c in convs[:2]]
    assert all(isinstance(g, tfc.GDN) and not g.inverse for g in gdns)
    assert not isinstance(convs[2].activation, tfc.GDN)
    synthesis = layers.SynthesisTransform(8)
    convs = [l for l in synthesis.layers if isinstance(l, tfc.SignalConv2D)]
    assert [c.strides_up for c in convs] == [(2, 2), (2, 2), (4, 4)]
    assert [c.kernel_support for c in convs] == [(5, 5), (5, 5), (9, 9)]
    assert all(isinstance(c.activation, tfc.GDN) and c.activation.inverse
               for c in convs[:2])
    assert convs[2].filters == 3


@pytest.mark.parametrize("shape", [(9, 9, 3, 4), (5, 5, 4, 3), (4, 6, 2, 3)])
def test_matmul_rdft_kernels_equal_tfcs_irfft_kernels(shape):
    import tensorflow_compression as tfc

    initial = tf.random.stateless_normal(shape, seed=(3, 4))
    ours = layers.MatmulRDFTParameter(initial)
    theirs = tfc.RDFTParameter(initial)
    np.testing.assert_allclose(ours(), initial, atol=1e-5)
    # Arbitrary coefficients, including imaginary parts that the inverse
    # real transform discards (DC, and Nyquist for even sizes).
    for i, (a, b) in enumerate([(ours.real, theirs.real),
                                (ours.imag, theirs.imag)]):
        value = tf.random.stateless_normal(a.shape, seed=(5, i))
        a.assign(value)
        b.assign(value)
    np.testing.assert_allclose(ours(), theirs(), atol=1e-5)
    # Same variables, so checkpoints of either load into the other.
    assert [v.shape for v in ours.trainable_variables] == [
        v.shape for v in theirs.trainable_variables]


def test_transforms_use_the_matmul_rdft_kernels():
    transform = layers.AnalysisTransform(8)
    transform(tf.zeros((1, 16, 16, 3)))
    convs = [l for l in transform.layers if isinstance(l, layers.SignalConv2D)]
    assert len(convs) == 3
    assert all(isinstance(c.kernel_parameter, layers.MatmulRDFTParameter)
               for c in convs)


@pytest.mark.parametrize("height,width", [(16, 16), (48, 80)])
def test_transforms_map_between_image_and_latent_shapes(height, width):
    analysis = layers.AnalysisTransform(8)
    synthesis = layers.SynthesisTransform(8)
    y = analysis(tf.zeros((1, height, width, 3)))
    assert y.shape == (1, height // 16, width // 16, 8)
    assert synthesis(y).shape == (1, height, width, 3)


@pytest.mark.parametrize("precision", [12, 16])
def test_decompressing_compressed_latents_gives_exactly_the_rounded_latents(
        precision):
    tf.keras.utils.set_random_seed(3)
    prior = rate.make_prior(4)
    entropy_model = rate.make_entropy_model(prior, compression=True,
                                            range_coder_precision=precision)
    # Include values far in the tails: they take the overflow (escape) path.
    y = tf.random.normal((2, 5, 6, 4)) * 6.0
    y = tf.tensor_scatter_nd_update(y, [[0, 0, 0, 0], [1, 2, 3, 1]], [300.0, -250.0])
    strings = entropy_model.compress(y)
    y_hat = entropy_model.decompress(strings, (5, 6))
    np.testing.assert_array_equal(y_hat.numpy(), entropy_model.quantize(y).numpy())
    assert strings.shape == (2,)


@pytest.mark.parametrize("precision", [11, 17, 0])
def test_range_coder_precision_outside_12_to_16_is_refused(precision):
    with pytest.raises(ValueError, match=f"12 to 16 bits, got {precision}"):
        rate.make_entropy_model(rate.make_prior(2), compression=True,
                                range_coder_precision=precision)


@pytest.mark.parametrize("kernel,stride,upsample", [
    (9, 4, False), (5, 2, False), (5, 2, True), (9, 4, True), (3, 1, False),
    (7, 3, True)])
def test_polyphase_convolution_equals_tfcs_ops_in_float32(kernel, stride, upsample):
    # The bfloat16 path's algebra, checked in float32 against tfc's own ops
    # on an awkward size (rectangular, not square) and with biases and GDN.
    tf.keras.utils.set_random_seed(7)
    kwargs = dict(corr=not upsample, padding="same_zeros", use_bias=True,
                  kernel_parameter="variable")
    if upsample:
        kwargs["strides_up"] = stride
    else:
        kwargs["strides_down"] = stride
    layer = layers.SignalConv2D(5, (kernel, kernel), **kwargs)
    side = (2 * stride, 3 * stride)
    x = tf.random.stateless_normal((2, *side, 4), seed=(1, kernel))
    expected = layer(x)
    layer.kernel_parameter.assign(
        tf.random.stateless_normal(layer.kernel_parameter.shape, seed=(2, 3)))
    expected = layer(x)
    got = layer._polyphase_convolution(x, tf.float32) + layer.bias
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def test_bfloat16_transforms_compute_the_float32_function_and_its_gradients():
    tf.keras.utils.set_random_seed(5)
    analysis = layers.AnalysisTransform(16)
    synthesis = layers.SynthesisTransform(16)
    fast_analysis = layers.AnalysisTransform(16, conv_dtype="bfloat16")
    fast_synthesis = layers.SynthesisTransform(16, conv_dtype="bfloat16")
    x = tf.random.stateless_uniform((2, 48, 64, 3), seed=(4, 5), maxval=255.0)
    for slow, fast, inputs in ((analysis, fast_analysis, x),
                               (synthesis, fast_synthesis, tf.zeros((2, 3, 4, 16)))):
        slow(inputs)
        fast(inputs)
        layers.copy_weights(slow, fast)
    y = analysis(x)
    fast_y = fast_analysis(x)
    assert fast_y.dtype == tf.float32
    # bfloat16 keeps 8 significant bits: agreement to ~1 % of the signal.
    scale = float(tf.reduce_max(tf.abs(y)))
    np.testing.assert_allclose(fast_y, y, atol=0.02 * scale)
    x_hat = synthesis(y)
    fast_x_hat = fast_synthesis(y)
    np.testing.assert_allclose(fast_x_hat, x_hat,
                               atol=0.02 * float(tf.reduce_max(tf.abs(x_hat))))
    # Gradients reach every variable and point the same way.
    def grads(a, s):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(s(a(x)) - x))
        return tape.gradient(loss, a.trainable_variables + s.trainable_variables)
    for g, fast_g in zip(grads(analysis, synthesis),
                         grads(fast_analysis, fast_synthesis)):
        assert fast_g is not None
        g, fast_g = np.ravel(g), np.ravel(fast_g)
        cosine = g @ fast_g / (np.linalg.norm(g) * np.linalg.norm(fast_g) + 1e-30)
        assert cosine > 0.99


def test_bfloat16_convolutions_refuse_what_they_cannot_compute():
    with pytest.raises(ValueError, match="odd, square"):
        layers.SignalConv2D(4, (4, 4), corr=True, strides_down=2,
                            padding="same_zeros", conv_dtype="bfloat16")
    with pytest.raises(ValueError, match="same_zeros"):
        layers.SignalConv2D(4, (5, 5), corr=True, strides_down=2,
                            padding="valid", conv_dtype="bfloat16")
    with pytest.raises(ValueError, match="conv_dtype must be one of"):
        layers.SignalConv2D(4, (5, 5), conv_dtype="float16")
    with pytest.raises(ValueError, match="extra_pad_end=False"):
        layers.SignalConv2D(4, (5, 5), corr=False, strides_up=2,
                            padding="same_zeros", extra_pad_end=False,
                            conv_dtype="bfloat16")
    layer = layers.SignalConv2D(4, (5, 5), corr=True, strides_down=2,
                                padding="same_zeros", conv_dtype="bfloat16")
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples of 2"):
        layer(tf.zeros((1, 7, 8, 3)))


def test_quantization_offsets_match_tfcs_heuristic_and_centre_the_median():
    from tensorflow_compression.python.distributions import helpers

    tf.keras.utils.set_random_seed(11)
    prior = rate.make_prior(6)
    # Move the densities away from their symmetric start.
    for v in prior.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, stddev=0.5))
    median = rate.prior_median(prior)
    logits = prior.base._logits_cumulative(median)
    np.testing.assert_allclose(logits, 0.0, atol=1e-3)
    offsets = rate.quantization_offset(prior).numpy()
    theirs = helpers.quantization_offset(prior).numpy()
    distance = np.abs(offsets - theirs)
    assert np.all(np.minimum(distance, 1 - distance) < 5e-3)
    assert np.all(np.abs(offsets) <= 0.5)
    np.testing.assert_allclose(offsets, median - np.round(median), atol=1e-6)
