import Foundation

/// A Core ML model file found on disk.
public struct ModelLocation: Equatable, Sendable {
    /// The kind of model file.
    public enum Format: String, Sendable {
        /// `.mlmodelc`: compiled, loads directly.
        case compiled = "mlmodelc"
        /// `.mlpackage`: compiled by the backend before loading.
        case package = "mlpackage"
        /// `.mlmodel`: compiled by the backend before loading.
        case specification = "mlmodel"
    }

    /// Model name: the file stem (``ModelSelection/modelName(fromFileName:)``).
    public let name: String
    /// The file (a directory for `.mlmodelc` and `.mlpackage`).
    public let url: URL
    /// The kind of file.
    public let format: Format

    /// The file name, e.g. `mobileone_s0.mlmodelc`.
    public var fileName: String { url.lastPathComponent }

    /// A location for `url`, or nil when its extension is not a model extension.
    public init?(url: URL) {
        guard let ext = ModelSelection.modelExtension(of: url.lastPathComponent),
              let format = Format(rawValue: ext)
        else {
            return nil
        }
        self.url = url
        self.format = format
        self.name = ModelSelection.modelName(fromFileName: url.lastPathComponent)
    }
}

/// What went wrong while looking for models.
public enum ModelDiscoveryError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case notFound(path: String)
    case notAModel(path: String)
    case unreadableDirectory(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path):
            return "no such file or directory: \(path)"
        case let .notAModel(path):
            return "not a Core ML model (.mlmodelc, .mlpackage, .mlmodel) or a directory: \(path)"
        case let .unreadableDirectory(path, reason):
            return "cannot list \(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// Finds Core ML models in directories, given files and app bundles.
///
/// The rules are pure functions over URLs (``locations(among:)``, ``uniqueSortedByName(_:)``);
/// the functions that list directories use `FileManager`, which works the same on Linux.
public enum ModelDiscovery {
    /// The model files among `entries` (anything else is ignored), unique by name, sorted by name;
    /// when two entries share a name, the first one wins.
    public static func locations(among entries: [URL]) -> [ModelLocation] {
        uniqueSortedByName(entries.compactMap(ModelLocation.init(url:)))
    }

    /// `locations` without later duplicates of a name, sorted by name.
    public static func uniqueSortedByName(_ locations: [ModelLocation]) -> [ModelLocation] {
        var seen = Set<String>()
        let unique = locations.filter { seen.insert($0.name).inserted }
        return unique.sorted { $0.name < $1.name }
    }

    /// Models at `paths`: each path is a model file, or a directory whose direct entries are
    /// searched (not recursively: a `.mlmodelc` is itself a directory). Sorted by name; when two
    /// files share a name, the first path given wins.
    ///
    /// - Throws: ``ModelDiscoveryError`` for a missing path, a file that is not a model, or an
    ///   unreadable directory.
    public static func models(at paths: [URL], fileManager: FileManager = .default) throws -> [ModelLocation] {
        var found: [ModelLocation] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
                throw ModelDiscoveryError.notFound(path: path.path)
            }
            if let location = ModelLocation(url: path) {
                found.append(location)
                continue
            }
            guard isDirectory.boolValue else {
                throw ModelDiscoveryError.notAModel(path: path.path)
            }
            found += try models(inDirectory: path, fileManager: fileManager)
        }
        return uniqueSortedByName(found)
    }

    /// Models in `directory`'s direct entries (hidden entries skipped), sorted by name.
    public static func models(inDirectory directory: URL, fileManager: FileManager = .default) throws -> [ModelLocation] {
        let entries: [URL]
        do {
            entries = try fileManager.contentsOfDirectory(
                at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
        } catch {
            throw ModelDiscoveryError.unreadableDirectory(path: directory.path, reason: error.localizedDescription)
        }
        return locations(among: entries)
    }

    /// Models bundled with an app whose resources are at `resourceURL` (`Bundle.main.resourceURL`):
    /// the direct entries of its `Models/` folder (where the Python CLI stages them), then of the
    /// resource root (where Xcode puts models added to the target). Sorted by name; `Models/` wins
    /// on a name clash. Nil or unreadable folders give no models.
    public static func bundledModels(resourceURL: URL?, fileManager: FileManager = .default) -> [ModelLocation] {
        guard let resources = resourceURL else { return [] }
        let directories = [resources.appendingPathComponent("Models", isDirectory: true), resources]
        var found: [ModelLocation] = []
        for directory in directories {
            if let entries = try? models(inDirectory: directory, fileManager: fileManager) {
                found += entries
            }
        }
        return uniqueSortedByName(found)
    }
}
