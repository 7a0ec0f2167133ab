"""The pattern lab: N:M and block patterns shown on the selected layer."""
