"""Tests against a real Kubernetes control plane: ``make test-k8s`` runs them, ``make test`` not."""
