/// The rule for a name that becomes part of a key in the store (a request id, a sidecar's or a runner's name):
/// letters, digits, '.', '_' and '-', 1 to 128 of them, not starting with '.'. Such a name can neither leave its
/// folder nor hide as a dot file.
public enum StoreObjectName {
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
            }
    }
}
