public enum CarShareModule {}
