"""Audio in and out: decoding, resampling and mel spectrograms, numerically equal to the reference."""
