"""Datasets: named, versioned collections of test cases."""
