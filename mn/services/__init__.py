"""Services that every management node hosts."""
