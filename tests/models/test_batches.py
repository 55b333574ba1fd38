def test_sample_negatives_draws_half_from_the_pool_rows():
    import numpy as np
    import scipy.sparse as sp

    from ledrec.models.batches import sample_negatives

    pool = sp.csr_matrix(np.array([[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32))
    rng = np.random.default_rng(0)
    s = sample_negatives(pool, 6, 2, 10, rng)
    assert s.shape == (2, 10)
    assert set(s[0, :5]) <= {2, 3}  # the first half of row 0 from its pool
    assert s.min() >= 0 and s.max() < 6
    uniform = sample_negatives(None, 6, 2, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(uniform, np.random.default_rng(0).integers(0, 6, (2, 10)))  # unchanged stream
    np.testing.assert_array_equal(s[1], uniform[1])  # rows without a pool stay uniform
