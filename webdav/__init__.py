"""WsgiDAV over the node tree (server.files): Nextcloud's /remote.php/dav/files/<uid>/ and
/remote.php/webdav/. Build the WSGI app with `webdav.app.build_webdav_app()`."""
