"""The peers Hookway is measured against: minimal apps a Django developer would otherwise write."""
