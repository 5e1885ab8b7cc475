"""The 2-D diffusion playground: toy data sets you can see whole, and models small enough to train
in a minute.

    data   the named point sets (two moons, spiral, rings, 8 Gaussians, checkerboard) and the check
           on points a user draws; numpy only
    exact  the exact (optimal) denoiser of a finite point set: the posterior p(x_0 = x_i | x_t), the
           Tweedie mean E[x_0 | x_t], eps*, the score, the mixture density q(x_t), and the
           diffusion loss floor no network can go below on that set
"""
