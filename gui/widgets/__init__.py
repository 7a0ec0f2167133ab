"""Shared widget helpers of every panel: colours, icons, forms and styles,
number formatting, figure export."""
