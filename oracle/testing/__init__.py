"""Testing beyond the worked examples: random differential testing (fuzz) and training on real data
(train). They use the verdict core's rules and never change a verdict."""
