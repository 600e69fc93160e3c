"""One module per chapter of the book, named after it: what chapter N imports besides the
engine, the ensemble trainer and the presentation layer (its measures, tables, figures
and explorer)."""
