import Foundation

/// The machine's processes as /proc shows them, to check what a job left running.
public enum ProcessTable {
    /// One process: its pid, parent, short name (`comm`) and start time, which tells it apart from a later
    /// process that reuses its pid.
    public struct Entry: Sendable, Hashable, CustomStringConvertible {
        public let pid: Int32
        public let parent: Int32
        public let name: String
        public let startTime: UInt64
        public let state: Character
        public var description: String { "\(name) (pid \(pid), parent \(parent), state \(state))" }
    }

    /// Every process now, zombies included.
    public static func all() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { Int32($0) }.compactMap(entry)
    }

    /// `/proc/<pid>/stat`, or nil once the process is gone.
    public static func entry(_ pid: Int32) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
        else { return nil }
        let name = String(text[text.index(after: open)..<close])
        // After the name: state, ppid, …; the start time is field 22 of the line, the 20th after the name.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let parent = Int32(fields[1]),
            let start = UInt64(fields[19])
        else { return nil }
        return Entry(pid: pid, parent: parent, name: name, startTime: start, state: state)
    }

    /// The processes below `pid`: its children, their children, and so on.
    public static func descendants(of pid: Int32) -> [Entry] {
        let everything = all()
        var found: [Entry] = []
        var parents: Set<Int32> = [pid]
        while true {
            let next = everything.filter { parents.contains($0.parent) && !found.contains($0) }
            if next.isEmpty { return found }
            found += next
            parents = Set(next.map(\.pid))
        }
    }

    /// Whether this very process (same pid and start time) still runs; a zombie has ended.
    public static func isRunning(_ process: Entry) -> Bool {
        guard let now = entry(process.pid) else { return false }
        return now.startTime == process.startTime && now.state != "Z" && now.state != "X"
    }
}
