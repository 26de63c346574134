"""Atlas labels carried to every subject of the sheet: which atlases, label fusion, regional volumes."""
