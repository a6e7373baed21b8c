/// The version of maglev, defined here and nowhere else: `maglev --version` prints it.
public enum MaglevVersion {
    public static let string = "0.11.0"
}
