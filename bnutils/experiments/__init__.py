"""Each chapter's experiments, one module per chapter: the functions a notebook calls to produce its numbers.

They take plain arguments (validated), build models and data through bnutils, run through bnutils.train,
cache expensive runs with bnutils.cache, and return JSON-able results, so a notebook cell stays short.
"""
