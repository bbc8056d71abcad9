import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A uniquely named directory (created with `mkdtemp`) that is deleted with everything in it by
/// `remove()` or, at the latest, when the object is deallocated.
public final class TemporaryDirectory: Sendable {
    /// The directory's file URL.
    public let url: URL
    /// The directory's file-system path.
    public var path: String { url.path }

    private let removed = Mutex(false)

    /// Creates a fresh, empty directory named `<prefix>.XXXXXX` with mode 0700.
    ///
    /// - Parameters:
    ///   - prefix: The start of the directory's name.
    ///   - parent: Where to create it; `NSTemporaryDirectory()` when nil.
    public init(prefix: String = "contingency-test", in parent: URL? = nil) throws {
        let parentPath = parent?.path ?? NSTemporaryDirectory()
        let template = URL(fileURLWithPath: parentPath, isDirectory: true)
            .appendingPathComponent("\(prefix).XXXXXX").path
        var buffer = Array(template.utf8CString)
        let created: String? = buffer.withUnsafeMutableBufferPointer { pointer in
            guard let result = mkdtemp(pointer.baseAddress!) else { return nil }
            return String(cString: result)
        }
        guard let created else {
            let code = errno
            throw TestSupportError("mkdtemp(\(template)) failed: \(String(cString: strerror(code)))")
        }
        url = URL(fileURLWithPath: created, isDirectory: true)
    }

    /// Returns the URL of `relativePath` inside this directory (nothing is created).
    public func appending(_ relativePath: String, isDirectory: Bool = false) -> URL {
        url.appendingPathComponent(relativePath, isDirectory: isDirectory)
    }

    /// Deletes the directory and its contents. Idempotent; errors are ignored (best effort),
    /// read-only sub-directories are made writable first when needed.
    public func remove() {
        let alreadyRemoved = removed.withLock { value -> Bool in
            defer { value = true }
            return value
        }
        guard !alreadyRemoved else { return }
        Self.removeTree(at: url)
    }

    deinit {
        remove()
    }

    /// Removes `url` recursively, best effort; missing files are not an error.
    static func removeTree(at url: URL) {
        let manager = FileManager.default
        guard (try? manager.removeItem(at: url)) == nil else { return }
        guard manager.fileExists(atPath: url.path) else { return }
        // A read-only directory inside blocks removal when not root: make everything writable, retry.
        if let enumerator = manager.enumerator(atPath: url.path) {
            _ = chmod(url.path, 0o700)
            while let relative = enumerator.nextObject() as? String {
                let path = url.appendingPathComponent(relative).path
                var info = stat()
                if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                    _ = chmod(path, 0o700)
                }
            }
        }
        try? manager.removeItem(at: url)
    }
}
