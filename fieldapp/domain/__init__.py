"""Pure rules: records, roles and text normalisation. No Flask, no SQL."""
