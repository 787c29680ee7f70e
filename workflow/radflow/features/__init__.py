"""IBSI chapter-1 feature families, one module each; ``engine.extract`` runs the configured set."""
