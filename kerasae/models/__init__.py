"""Model families. Each module registers its models; the registry imports them lazily."""
