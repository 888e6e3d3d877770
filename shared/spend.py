"""Spend routes. (Filled by the cost issue.)"""
