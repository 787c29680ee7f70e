"""IBSI chapter-1 feature families, one module each; ``engine.extract_columns`` runs the configured set."""
