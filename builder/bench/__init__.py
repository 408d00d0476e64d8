"""`djbake bench`: run measures, targets boots, probe reads inside a target, report turns numbers into ratios, chart draws."""
