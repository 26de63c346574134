"""Transforms applied: ANTs transform files read as arrays, and label maps carried through them."""
