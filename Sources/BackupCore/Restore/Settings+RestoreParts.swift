extension Settings {
    public static let restoreParts = Setting(
        "RESTORE_PARTS", default: "database,uploads,env",
        "What restore-job puts back, comma-separated: database, uploads, env (e.g. uploads when files were lost and the database is fine, or database,uploads to keep a .env whose secrets were rotated since). The whole archive is verified first either way; the parts not named are left untouched")
}
