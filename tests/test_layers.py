"""The transforms and the entropy bottleneck, checked against closed forms."""

import numpy as np
import pytest
import tensorflow as tf

from e2e_compress import layers, rate


def _gdn_layers(transform):
    return [l.activation for l in transform.layers
            if getattr(l, "activation", None) is not None
            and type(l.activation).__name__ == "GDN"]


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


def test_decompressing_compressed_latents_gives_exactly_the_rounded_latents():
    tf.keras.utils.set_random_seed(3)
    prior = rate.make_prior(4)
    entropy_model = rate.make_entropy_model(prior, compression=True)
    # Include values far in the tails: they take the overflow (escape) path.
    y = tf.random.normal((2, 5, 6, 4)) * 6.0
    y = tf.tensor_scatter_nd_update(y, [[0, 0, 0, 0], [1, 2, 3, 1]], [300.0, -250.0])
    strings = entropy_model.compress(y)
    y_hat = entropy_model.decompress(strings, (5, 6))
    np.testing.assert_array_equal(y_hat.numpy(), entropy_model.quantize(y).numpy())
    assert strings.shape == (2,)
