"""Tools for writing worked examples: new (scaffold), validate (JSON Schema), solve, explain, draw.
They use the verdict core and never change a verdict."""
