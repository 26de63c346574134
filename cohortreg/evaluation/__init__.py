"""How good a registration is: label overlap and surface distance, warp regularity, label-free QC, MI."""
