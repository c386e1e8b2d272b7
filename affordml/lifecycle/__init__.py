"""Lifecycle actions over the phase registry: upgrade (hop plan) and backup."""
